package node

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// Witnessing of audit logs (see node/internal/audit, witness.go): this node
// offers its signed tree head to every other member at an interval
// ([Node.PublishAuditHead], run by the stack), keeps the latest head of
// every other node that extends the one before ([Options.Witness]), and
// answers auditors with what it holds and what the others hold for it
// (GET /v1/audit/heads). Heads travel over the federation's mutually
// authenticated peer transport and are verified under the sender's
// enrolled key (its audit log is signed with that key). A head carries a
// size, a root and a signature: nothing about any event.

// AuditHeads is the node's own log as witnessing needs it; *audit.Log
// implements it.
type AuditHeads interface {
	// Head is the current signed tree head.
	Head() audit.TreeHead
	// ConsistencyProof proves the tree of size m a prefix of that of size n.
	ConsistencyProof(m, n uint64) ([]audit.Hash, error)
	// SaveHead writes the current head to the log's head file.
	SaveHead() error
}

// Peer paths of witnessing.
const (
	// PeerAuditHeadPath receives a node's head offer (audit.HeadOffer) and
	// answers an audit.OfferResult.
	PeerAuditHeadPath = "/peer/v1/audit/head"
	// PeerAuditHeldPath answers the head this node holds for the caller.
	PeerAuditHeldPath = "/peer/v1/audit/held"
)

// AuditPeerHandler serves the witnessing peer paths (mount beside
// [Node.PeerHandler]); it answers 404 on a node without a witness.
func (n *Node) AuditPeerHandler(peerID func(*http.Request) (string, bool)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+PeerAuditHeadPath, n.peerRoute("peer.audit.head", peerID, n.handlePeerAuditHead))
	mux.Handle("POST "+PeerAuditHeldPath, n.peerRoute("peer.audit.held", peerID, n.handlePeerAuditHeld))
	return mux
}

// memberKey returns a member's enrolled public key.
func (n *Node) memberKey(id string) ed25519.PublicKey {
	if n.opt.Peers == nil {
		return nil
	}
	for _, m := range n.opt.Peers.MemberKeys() {
		if m.NodeID == id {
			k, err := base64.StdEncoding.DecodeString(m.PublicKey)
			if err == nil && len(k) == ed25519.PublicKeySize {
				return k
			}
		}
	}
	return nil
}

func (n *Node) handlePeerAuditHead(w http.ResponseWriter, r *http.Request) error {
	if n.opt.Witness == nil {
		return errorf(http.StatusNotFound, httpx.CodeNotFound, "this node witnesses no audit heads")
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return errorf(http.StatusRequestEntityTooLarge, httpx.CodeTooLarge, "head offer too large")
	}
	offer, err := audit.DecodeHeadOffer(b)
	if err != nil {
		return errorf(http.StatusBadRequest, httpx.CodeBadRequest, "not a head offer")
	}
	peer := peerFrom(r.Context())
	pub := n.memberKey(peer)
	if pub == nil {
		return errorf(http.StatusForbidden, httpx.CodeForbidden, "no enrolled key for this node")
	}
	res, err := n.opt.Witness.Offer(peer, pub, offer)
	if errors.Is(err, audit.ErrBadOffer) {
		return errorf(http.StatusBadRequest, httpx.CodeBadRequest, "the head is not signed by the node's key")
	}
	if err != nil {
		return err
	}
	if res.Status == audit.OfferInconsistent {
		n.log.Error("a node's audit head does not extend the head this node holds for it: evidence kept", "peer", peer,
			"held", res.Held, "offered", offer.Size)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// heldAnswer is the answer on PeerAuditHeldPath.
type heldAnswer struct {
	Head *audit.NodeHead `json:"head"`
}

func (n *Node) handlePeerAuditHeld(w http.ResponseWriter, r *http.Request) error {
	if n.opt.Witness == nil {
		return errorf(http.StatusNotFound, httpx.CodeNotFound, "this node witnesses no audit heads")
	}
	if err := decode(r, &struct{}{}); err != nil {
		return err
	}
	var ans heldAnswer
	if h, ok := n.opt.Witness.Held(peerFrom(r.Context())); ok {
		ans.Head = &h
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// witnessState is what the publisher remembers per witness: the size of the
// head it last saw accepted, from which the next proof starts.
type witnessState struct {
	mu   sync.Mutex
	held map[string]uint64
}

// auditPeerTimeout bounds one witnessing call to a peer.
const auditPeerTimeout = 5 * time.Second

// PublishAuditHead saves the node's current tree head to its head file and
// offers it to every other member, with a consistency proof from the head
// each holds. It returns the number of witnesses that hold it now. A
// witness that refuses it as inconsistent is logged as an error: this
// node's log no longer extends what it signed before.
func (n *Node) PublishAuditHead(ctx context.Context) (int, error) {
	if n.opt.AuditHeads == nil || n.opt.Peers == nil {
		return 0, nil
	}
	head := n.opt.AuditHeads.Head()
	if head.Size == 0 {
		return 0, nil
	}
	if err := n.opt.AuditHeads.SaveHead(); err != nil {
		n.log.Error("audit head file not saved", "err", err)
	}
	held := 0
	var errs []error
	for _, m := range n.opt.Peers.MemberKeys() {
		if m.NodeID == n.cfg.NodeID {
			continue
		}
		ok, err := n.offerHead(ctx, m.NodeID, head)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			held++
		}
	}
	return held, errors.Join(errs...)
}

// offerHead offers head to one witness, once more with a proof if it asks.
func (n *Node) offerHead(ctx context.Context, witness string, head audit.TreeHead) (bool, error) {
	n.witnesses.mu.Lock()
	from := n.witnesses.held[witness]
	n.witnesses.mu.Unlock()
	for range 2 {
		offer := audit.HeadOffer{TreeHead: head}
		if from > 0 && from < head.Size {
			offer.From = from
			p, err := n.opt.AuditHeads.ConsistencyProof(from, head.Size)
			if err != nil {
				return false, err
			}
			offer.Proof = p
		}
		var res audit.OfferResult
		cctx, cancel := context.WithTimeout(ctx, auditPeerTimeout)
		err := n.opt.Peers.Call(cctx, witness, PeerAuditHeadPath, offer, &res)
		cancel()
		if err != nil {
			return false, err
		}
		n.witnesses.mu.Lock()
		if n.witnesses.held == nil {
			n.witnesses.held = map[string]uint64{}
		}
		n.witnesses.held[witness] = res.Held
		n.witnesses.mu.Unlock()
		switch res.Status {
		case audit.OfferAccepted:
			return true, nil
		case audit.OfferNeedProof:
			if res.Held > head.Size || res.Held == 0 {
				n.log.Error("a witness holds a larger audit head than this node's log: lines were removed", "witness", witness,
					"held", res.Held, "log", head.Size)
				return false, nil
			}
			from = res.Held
		case audit.OfferInconsistent:
			n.log.Error("a witness refused this node's audit head: the log does not extend the head it signed before", "witness", witness,
				"held", res.Held, "log", head.Size)
			return false, nil
		default:
			return false, nil
		}
	}
	return false, nil
}

// WitnessedHead is a head another node holds for this one, as GET
// /v1/audit/heads shows it.
type WitnessedHead struct {
	Witness string `json:"witness"`
	audit.NodeHead
}

// auditHeadsAnswer is the answer of GET /v1/audit/heads.
type auditHeadsAnswer struct {
	// Self is this node's id.
	Self string `json:"self"`
	// Heads are the heads this node holds for every other node.
	Heads []audit.NodeHead `json:"heads"`
	// Witnessed are the heads the other members hold for this node, asked
	// now over the peer transport.
	Witnessed []WitnessedHead `json:"witnessed"`
	// Unreachable are the members that did not answer.
	Unreachable []string `json:"unreachable"`
}

func (n *Node) handleAuditHeads(w http.ResponseWriter, r *http.Request) error {
	ans := auditHeadsAnswer{Self: n.cfg.NodeID, Heads: []audit.NodeHead{}, Witnessed: []WitnessedHead{}, Unreachable: []string{}}
	if n.opt.Witness != nil {
		ans.Heads = n.opt.Witness.All()
	}
	if n.opt.Peers != nil {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, m := range n.opt.Peers.MemberKeys() {
			if m.NodeID == n.cfg.NodeID {
				continue
			}
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(r.Context(), auditPeerTimeout)
				defer cancel()
				var got heldAnswer
				err := n.opt.Peers.Call(ctx, id, PeerAuditHeldPath, struct{}{}, &got)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					ans.Unreachable = append(ans.Unreachable, id)
				case got.Head != nil:
					got.Head.Node = n.cfg.NodeID
					ans.Witnessed = append(ans.Witnessed, WitnessedHead{Witness: id, NodeHead: *got.Head})
				}
			}(m.NodeID)
		}
		wg.Wait()
	}
	sort.Slice(ans.Witnessed, func(i, j int) bool { return ans.Witnessed[i].Witness < ans.Witnessed[j].Witness })
	sort.Strings(ans.Unreachable)
	n.audit(r.Context(), AuditEvent{Action: "audit-heads", Actor: principalFrom(r.Context()).Name, Count: len(ans.Heads) + len(ans.Witnessed), Outcome: "ok"})
	writeJSON(w, http.StatusOK, ans)
	return nil
}

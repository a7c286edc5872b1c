package node

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

type evaluateRequest struct {
	Purpose string `json:"purpose"`
	// Epoch 0 (or absent) means the purpose's current key.
	Epoch   uint32   `json:"epoch"`
	Blinded []string `json:"blinded"`
}

// evaluateResponse is POST /v1/tokens/evaluate's answer: T partial
// evaluations whose proofs this node has verified, with what a client needs
// to verify them again and combine them (the key's threshold and each
// issuer's public share). The node never sees an unblinded value.
type evaluateResponse struct {
	Purpose  string        `json:"purpose"`
	Epoch    uint32        `json:"epoch"`
	T        int           `json:"t"`
	GroupKey string        `json:"groupKey"`
	Partials []partialJSON `json:"partials"`
	// Epochs are the purpose's keys in force, newest first: more than one
	// during a rotation's overlap, when a client evaluates under each
	// (naming the epoch) and looks up every lookup key.
	Epochs []uint32 `json:"epochs"`
}

type partialJSON struct {
	Issuer      string   `json:"issuer"`
	Index       uint16   `json:"index"`
	PublicShare string   `json:"publicShare"`
	Evaluated   []string `json:"evaluated"`
	Proof       string   `json:"proof"`
}

// peerEvaluateResponse is one issuer's answer to another node: its partial.
type peerEvaluateResponse struct {
	Epoch     uint32   `json:"epoch"`
	Index     uint16   `json:"index"`
	Evaluated []string `json:"evaluated"`
	Proof     string   `json:"proof"`
}

// MaxElementBytes bounds one blinded element (a ristretto255 element is 32).
const MaxElementBytes = 64

func decodeBlinded(req *evaluateRequest, max int) ([][]byte, *apiError) {
	if len(req.Blinded) == 0 || len(req.Blinded) > max {
		return nil, errorf(http.StatusBadRequest, httpx.CodeInvalidBatch, "send 1 to %d blinded elements", max)
	}
	out := make([][]byte, len(req.Blinded))
	for i, s := range req.Blinded {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			b, err = base64.RawURLEncoding.DecodeString(s)
		}
		if err != nil || len(b) == 0 || len(b) > MaxElementBytes {
			return nil, errorf(http.StatusBadRequest, httpx.CodeInvalidElement, "blinded element %d is not base64 of a group element", i)
		}
		out[i] = b
	}
	return out, nil
}

func encodeAll(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = base64.StdEncoding.EncodeToString(b)
	}
	return out
}

// keySet returns the key for purpose at epoch (0: current) from the
// keyring, as a 503 no_token_key when the federation has none yet.
func (n *Node) keySet(purpose string, epoch uint32) (KeySet, error) {
	if n.opt.Keyring == nil {
		return KeySet{}, errorf(http.StatusServiceUnavailable, httpx.CodeNoTokenKey, "this node has no token keys (no key records)")
	}
	ks, err := n.opt.Keyring.KeySet(purpose, epoch)
	if errors.Is(err, ErrNoKey) {
		if epoch != 0 {
			return KeySet{}, errorf(http.StatusBadRequest, httpx.CodeUnknownEpoch, "there is no token key for that purpose at epoch %d", epoch)
		}
		return KeySet{}, errorf(http.StatusServiceUnavailable, httpx.CodeNoTokenKey, "the federation has no token key for that purpose yet")
	}
	if err != nil {
		return KeySet{}, fmt.Errorf("node: key for %s: %w", purpose, err)
	}
	return ks, nil
}

// partialUse says who will combine the partials evaluatePartials returns.
type partialUse int

const (
	// forClient: they leave the node (POST /v1/tokens/evaluate), and the
	// client checks every proof, this node's own included.
	forClient partialUse = iota
	// forTokenizer: this node's own tokenizer combines them without
	// checking proofs (a VerifiedCombiner), so this node's own partial
	// needs none (see evaluatePartials).
	forTokenizer
)

// partialResult is one issuer's answer as the fan-out collects it.
type partialResult struct {
	issuer IssuerKey
	p      Partial
	err    error
}

// evaluatePartials gets T valid partial evaluations of blinded under the
// purpose's key. It asks T issuers first — this node itself through its
// share when it holds one, then the others in the order issuerOrder gives
// (those that answered well lately first) — and one more whenever an answer
// fails, is refused or fails its proof, and all the others at once when the
// first ones have not all answered within the hedge (Config.IssuerHedge,
// plus 200µs a blinded element). Asking only T spares the issuers a third
// of their work with t = 2 of 3 and costs nothing while they answer; the
// hedge bounds what a slow or unreachable issuer adds. Each answer's proof
// is verified as it arrives, by the goroutine that asked, so the t proofs
// are checked in parallel; a bad one is rejected, counted and audited.
// It returns the first T valid partials, ordered by index. With fewer than
// T valid answers it returns an *IssuersError (503 issuers_unavailable),
// which wraps ErrIssuerUnavailable, or an issuer's refusal for the purpose
// or the rate.
func (n *Node) evaluatePartials(ctx context.Context, purpose string, epoch uint32, blinded [][]byte, use partialUse) (KeySet, []Partial, error) {
	ks, err := n.keySet(purpose, epoch)
	if err != nil {
		return KeySet{}, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.IssuerTimeout.D())
	defer cancel()
	order := n.issuerOrder(ks.Issuers)
	results := make(chan partialResult, len(order))
	asked := 0
	ask := func() {
		iss := order[asked]
		asked++
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			p, err := n.askIssuer(ctx, ks, iss, blinded, use)
			// This node's own partial needs no check: the keyring gives a
			// share only if its public key is the key record's K_i
			// (Keyring.Share), and circl evaluates with it. The others'
			// are checked here, not as the answers are collected, so that
			// they are checked in parallel.
			if err == nil && iss.NodeID != n.cfg.NodeID {
				if verr := n.opt.Keyring.VerifyPartial(ks, blinded, p); verr != nil {
					err = fmt.Errorf("%w: %w", errBadPartial, verr)
				}
			}
			results <- partialResult{issuer: iss, p: p, err: err}
		}()
	}
	for asked < min(ks.T, len(order)) {
		ask()
	}
	hedge := time.NewTimer(n.cfg.IssuerHedge.D() + time.Duration(len(blinded))*200*time.Microsecond)
	defer hedge.Stop()
	var valid []Partial
	var refusal *apiError
	answered := 0
	for answered < asked {
		var r partialResult
		select {
		case r = <-results:
		case <-hedge.C:
			// The first ones are slow: ask everyone left, and put the slow
			// ones after the others for the next tokenisations.
			for _, iss := range order[:asked] {
				n.issuers.slow(iss.NodeID, n.opt.Now())
			}
			for asked < len(order) {
				ask()
			}
			continue
		}
		answered++
		if errors.Is(r.err, errBadPartial) {
			n.metrics.partial(r.issuer.NodeID, partialBadProof)
			n.audit(ctx, AuditEvent{Action: "evaluate-partial", Actor: "node:" + r.issuer.NodeID, Peer: r.issuer.NodeID, Purpose: purpose, Count: len(blinded), Outcome: outcomeError})
			n.log.Warn("an issuer's partial evaluation failed its proof; using another issuer", "issuer", r.issuer.NodeID)
		}
		n.issuers.note(r.issuer.NodeID, r.err, n.opt.Now())
		if r.err != nil {
			var ae *apiError
			// A refusal for the purpose or the rate is this node's answer,
			// not an outage: pass the issuer's own words on.
			if errors.As(r.err, &ae) && (ae.Status == http.StatusForbidden || ae.Status == http.StatusTooManyRequests) && refusal == nil {
				refusal = ae
			}
			if !errors.Is(r.err, errBadPartial) {
				n.metrics.partial(r.issuer.NodeID, partialFailed)
			}
			if asked < len(order) {
				ask()
			}
			continue
		}
		n.metrics.partial(r.issuer.NodeID, partialOK)
		valid = append(valid, r.p)
		if len(valid) == ks.T {
			slices.SortFunc(valid, func(a, b Partial) int { return int(a.Index) - int(b.Index) })
			return ks, valid, nil
		}
	}
	if refusal != nil {
		return KeySet{}, nil, refusal
	}
	return KeySet{}, nil, &IssuersError{Answered: len(valid), N: len(ks.Issuers), T: ks.T}
}

// issuerRetryAfter is how long an issuer that failed or was slow is asked
// only when others fail; after it, it is asked like the others again, so a
// recovered issuer takes its share of the work.
const issuerRetryAfter = 30 * time.Second

// issuerOrder is the order evaluatePartials asks issuers in: this node
// first when it is one (no network), then the others in random order, so
// that the nodes' requests spread over them, except that one that failed
// or was slow within issuerRetryAfter, and has not answered well since,
// comes last (the longest untroubled first).
func (n *Node) issuerOrder(issuers []IssuerKey) []IssuerKey {
	order := slices.Clone(issuers)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	now := n.opt.Now()
	rank := func(iss IssuerKey) (int, time.Time) {
		if iss.NodeID == n.cfg.NodeID {
			return 0, time.Time{}
		}
		st, ok := n.issuers.get(iss.NodeID)
		trouble := st.LastErrorAt
		if st.SlowAt.After(trouble) {
			trouble = st.SlowAt
		}
		if !ok || !st.LastOK.Before(trouble) || now.Sub(trouble) >= issuerRetryAfter {
			return 1, time.Time{}
		}
		return 2, trouble
	}
	slices.SortStableFunc(order, func(a, b IssuerKey) int {
		ra, ta := rank(a)
		rb, tb := rank(b)
		if ra != rb {
			return ra - rb
		}
		return ta.Compare(tb)
	})
	return order
}

// askIssuer gets one issuer's partial: from this node's own share, or from
// the issuer over the peer transport.
func (n *Node) askIssuer(ctx context.Context, ks KeySet, iss IssuerKey, blinded [][]byte, use partialUse) (Partial, error) {
	if iss.NodeID == n.cfg.NodeID {
		ev, proof, err := n.issuerEvaluate(ctx, n.cfg.NodeID, n.cfg.Purposes, ks.Purpose, ks.Epoch, blinded, use == forClient)
		if err != nil {
			return Partial{}, err
		}
		return Partial{NodeID: iss.NodeID, Index: iss.Index, Evaluated: ev, Proof: proof}, nil
	}
	if n.opt.Peers == nil {
		return Partial{}, fmt.Errorf("%w: no peer transport", ErrIssuerUnavailable)
	}
	req := evaluateRequest{Purpose: ks.Purpose, Epoch: ks.Epoch, Blinded: encodeAll(blinded)}
	var resp peerEvaluateResponse
	if err := n.opt.Peers.Call(ctx, iss.NodeID, PeerEvaluatePath, req, &resp); err != nil {
		if ae, ok := asPeerError(err); ok {
			return Partial{}, ae
		}
		return Partial{}, fmt.Errorf("%w: %s: %w", ErrIssuerUnavailable, iss.NodeID, err)
	}
	return decodePartial(resp, iss, ks.Epoch, len(blinded))
}

// decodePartial checks an issuer's answer for the batch it was asked
// (its index, the epoch, one element per blinded element, sizes) and
// decodes it; its proof is checked afterwards (Keyring.VerifyPartial).
// Anything else is a malformed answer, counted against the issuer as if it
// had not answered.
func decodePartial(resp peerEvaluateResponse, iss IssuerKey, epoch uint32, n int) (Partial, error) {
	malformed := fmt.Errorf("%w: %s: malformed answer", ErrIssuerUnavailable, iss.NodeID)
	if resp.Index != iss.Index || resp.Epoch != epoch || len(resp.Evaluated) != n {
		return Partial{}, malformed
	}
	p := Partial{NodeID: iss.NodeID, Index: iss.Index, Evaluated: make([][]byte, len(resp.Evaluated))}
	for i, s := range resp.Evaluated {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) > MaxElementBytes {
			return Partial{}, malformed
		}
		p.Evaluated[i] = b
	}
	proof, err := base64.StdEncoding.DecodeString(resp.Proof)
	if err != nil || len(proof) > 2*MaxElementBytes {
		return Partial{}, malformed
	}
	p.Proof = proof
	return p, nil
}

// issuerEvaluate is the issuer's side: the requester (a node id) must be
// authorised for purpose, within its rate, and every evaluation is audited
// (who, purpose, count — never an element). It evaluates with this node's
// share of the (purpose, epoch) key only, with the proof unless withProof
// is false, which only this node's own tokenizer asks for (its partial
// never leaves the node; see partialUse).
func (n *Node) issuerEvaluate(ctx context.Context, requester string, authorised []string, purpose string, epoch uint32, blinded [][]byte, withProof bool) ([][]byte, []byte, error) {
	var share Share
	if n.opt.Keyring != nil {
		share = n.opt.Keyring.Share(purpose, epoch)
	}
	if share == nil {
		return nil, nil, errorf(http.StatusMisdirectedRequest, httpx.CodeNotIssuer, "this node holds no share of that key")
	}
	if !slices.Contains(authorised, purpose) {
		n.metrics.evaluated(purpose, authorised, outcomeDenied, len(blinded))
		n.audit(ctx, AuditEvent{Action: "evaluate", Actor: "node:" + requester, Purpose: purpose, Count: len(blinded), Outcome: outcomeDenied})
		return nil, nil, errorf(http.StatusForbidden, httpx.CodePurpose, "the requesting node is not authorised for that purpose")
	}
	if ae := n.charge(ctx, "peer.evaluate", requester, blindedElements(blinded)); ae != nil {
		n.metrics.evaluated(purpose, authorised, outcomeDenied, len(blinded))
		n.audit(ctx, AuditEvent{Action: "evaluate", Actor: "node:" + requester, Purpose: purpose, Count: len(blinded), Outcome: outcomeDenied})
		return nil, nil, ae
	}
	var (
		ev    [][]byte
		proof []byte
		err   error
	)
	if withProof {
		ev, proof, err = share.Evaluate(blinded)
	} else {
		ev, err = share.EvaluateUnproven(blinded)
	}
	if err != nil {
		n.metrics.evaluated(purpose, authorised, outcomeError, len(blinded))
		n.audit(ctx, AuditEvent{Action: "evaluate", Actor: "node:" + requester, Purpose: purpose, Count: len(blinded), Outcome: outcomeError})
		return nil, nil, errorf(http.StatusBadRequest, httpx.CodeEvaluationFailed, "the blinded elements could not be evaluated")
	}
	n.metrics.evaluated(purpose, authorised, outcomeOK, len(blinded))
	n.audit(ctx, AuditEvent{Action: "evaluate", Actor: "node:" + requester, Purpose: purpose, Count: len(blinded), Outcome: outcomeOK})
	return ev, proof, nil
}

// nodeEvaluator is the node's own Evaluator, which its tokenizer uses:
// server-side tokenisation reaches the issuers the way the browser's does.
// Every caller of n.tok has checked the purpose against the node's
// configured set already (the handlers at their entry, republication with
// the set itself), so it is not checked again here.
type nodeEvaluator struct{ n *Node }

func (e nodeEvaluator) KeySet(_ context.Context, purpose string, epoch uint32) (KeySet, error) {
	return e.n.keySet(purpose, epoch)
}

func (e nodeEvaluator) EvaluatePartials(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([]Partial, error) {
	use := forClient
	if vc, ok := e.n.opt.Tokenizer.(VerifiedCombiner); ok && vc.CombinesVerified() {
		use = forTokenizer
	}
	_, ps, err := e.n.evaluatePartials(ctx, purpose, epoch, blinded, use)
	return ps, err
}

func (n *Node) handleEvaluate(w http.ResponseWriter, r *http.Request, req *evaluateRequest) error {
	if !n.purposeAllowed(req.Purpose) {
		return errorf(http.StatusForbidden, httpx.CodePurpose, "this node is not authorised for that purpose")
	}
	blinded, aerr := decodeBlinded(req, n.cfg.MaxBatch)
	if aerr != nil {
		return aerr
	}
	p := principalFrom(r.Context())
	ks, partials, err := n.evaluatePartials(r.Context(), req.Purpose, req.Epoch, blinded, forClient)
	if err != nil {
		return err
	}
	n.audit(r.Context(), AuditEvent{Action: "evaluate-request", Actor: p.Name, Purpose: req.Purpose, Count: len(blinded), Outcome: "ok"})
	resp := evaluateResponse{Purpose: ks.Purpose, Epoch: ks.Epoch, T: ks.T, GroupKey: base64.StdEncoding.EncodeToString(ks.GroupKey),
		Partials: make([]partialJSON, len(partials)), Epochs: n.epochsInForce(req.Purpose)}
	if len(resp.Epochs) == 0 {
		resp.Epochs = []uint32{ks.Epoch}
	}
	for i, pt := range partials {
		ik, _ := ks.Issuer(pt.Index)
		resp.Partials[i] = partialJSON{Issuer: pt.NodeID, Index: pt.Index, PublicShare: base64.StdEncoding.EncodeToString(ik.PublicShare),
			Evaluated: encodeAll(pt.Evaluated), Proof: base64.StdEncoding.EncodeToString(pt.Proof)}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// PeerEvaluatePath is the node-to-node evaluation endpoint on the issuer.
const PeerEvaluatePath = "/peer/v1/evaluate"

// PeerContactPath is the node-to-node contact request endpoint on a holder.
const PeerContactPath = "/peer/v1/contact-requests"

// PeerHandler serves node-to-node calls. peerID tells who is calling (from
// the mutually authenticated transport); mount it on the federation's peer
// server.
func (n *Node) PeerHandler(peerID func(*http.Request) (string, bool)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+PeerEvaluatePath, n.peerRoute("peer.evaluate", peerID, jsonHandler(n, "peer.evaluate", n.handlePeerEvaluate)))
	mux.Handle("POST "+PeerContactPath, n.peerRoute("peer.contact", peerID, jsonHandler(n, "peer.contact", n.handlePeerContact)))
	mux.Handle("POST "+PeerContactAnswerPath, n.peerRoute("peer.contact-answer", peerID, jsonHandler(n, "peer.contact-answer", n.handlePeerContactAnswer)))
	mux.Handle("POST "+PeerBrokerPath, n.peerRoute("peer.brokered-contact", peerID, jsonHandler(n, "peer.brokered-contact", n.handlePeerBrokered)))
	mux.Handle("POST "+PeerShieldedEntriesPath, n.peerRoute("peer.shielded-entries", peerID, jsonHandler(n, "peer.shielded-entries", n.handlePeerShieldedEntries)))
	return mux
}

type peerCtxKey struct{}

func (n *Node) peerRoute(name string, peerID func(*http.Request) (string, bool), h handlerFunc) http.Handler {
	return n.route(name, n.cfg.MaxBodyBytes, func(w http.ResponseWriter, r *http.Request) error {
		id, ok := peerID(r)
		if !ok || id == "" {
			return errorf(http.StatusUnauthorized, httpx.CodeUnauthenticated, "peer not authenticated")
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), peerCtxKey{}, id)))
	})
}

func peerFrom(ctx context.Context) string {
	s, _ := ctx.Value(peerCtxKey{}).(string)
	return s
}

func (n *Node) handlePeerEvaluate(w http.ResponseWriter, r *http.Request, req *evaluateRequest) error {
	if req.Epoch == 0 {
		return errorf(http.StatusBadRequest, httpx.CodeUnknownEpoch, "name the key's epoch")
	}
	blinded, aerr := decodeBlinded(req, n.cfg.MaxBatch)
	if aerr != nil {
		return aerr
	}
	peer := peerFrom(r.Context())
	var authorised []string
	if n.opt.Peers != nil {
		authorised = n.opt.Peers.Purposes(peer)
	}
	ev, proof, err := n.issuerEvaluate(r.Context(), peer, authorised, req.Purpose, req.Epoch, blinded, true)
	if err != nil {
		return err
	}
	share := n.opt.Keyring.Share(req.Purpose, req.Epoch) // non-nil: issuerEvaluate checked
	writeJSON(w, http.StatusOK, peerEvaluateResponse{Epoch: req.Epoch, Index: share.Index(), Evaluated: encodeAll(ev), Proof: base64.StdEncoding.EncodeToString(proof)})
	return nil
}

type lookupRequest struct {
	LookupKey string `json:"lookupKey"`
	// Purpose is required: the purpose the key was made for, which this
	// node must be authorised for (Config.Purposes), as for locate.
	Purpose string `json:"purpose"`
}

func decodeLookupKey(s string) ([16]byte, *apiError) {
	var k [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil || len(b) != 16 {
		return k, errorf(http.StatusBadRequest, httpx.CodeInvalidLookupKey, "lookupKey must be base64 of 16 bytes")
	}
	copy(k[:], b)
	return k, nil
}

// lookupResponse carries sealed entries: only a holder of the token's seal
// key can open them (the browser, with the wasm module).
type lookupResponse struct {
	Entries []string `json:"entries"`
	// Members are the federation's enrolled nodes and their public keys, so
	// that a client that opens entries itself can check holder signatures.
	Members []MemberKey `json:"members"`
	// Self is this node's id: a client that opens entries itself leaves its
	// own agency out of "who else is involved", as POST /v1/locate does
	// (see selfHolds there).
	Self string `json:"self"`
	// SelfEntryKey (a shielded node only) is this node's own entry key
	// under the lookup key: its own entries name its broker, and a client
	// tells them apart by their key (base64url).
	SelfEntryKey string `json:"selfEntryKey,omitempty"`
}

// EntryKeys is an Index that can say which entry key is this node's under
// a lookup key (LocatorIndex does): a shielded node's own entries do not
// name it.
type EntryKeys interface {
	EntryKey(lookup [16]byte) [32]byte
}

// handleLookup answers the sealed entries under a lookup key for a named
// purpose. The purpose is checked as locate checks it — the caller's role
// by the route, the purpose against the node's authorised set — and a
// refusal is audited as denied. A lookup key does not reveal the purpose it
// was made for, so a key for another purpose obtained elsewhere is not
// caught here; what keeps such a caller out is that it cannot make the key
// itself (the issuer evaluates only for the node's authorised purposes) and
// cannot open the entries without the matching seal key.
func (n *Node) handleLookup(w http.ResponseWriter, r *http.Request, req *lookupRequest) error {
	k, aerr := decodeLookupKey(req.LookupKey)
	if aerr != nil {
		return aerr
	}
	p := principalFrom(r.Context())
	if !n.purposeAllowed(req.Purpose) {
		// The requested name is the caller's choice: it is audited only when
		// it is one of the node's, so the log takes no arbitrary strings.
		n.audit(r.Context(), AuditEvent{Action: "lookup", Actor: p.Name, Outcome: "denied", Subject: [][16]byte{k}})
		if req.Purpose == "" {
			return errorf(http.StatusBadRequest, httpx.CodeBadRequest, "purpose is required")
		}
		return errorf(http.StatusForbidden, httpx.CodePurpose, "this node is not authorised for that purpose")
	}
	sealed, err := n.opt.Index.Lookup(r.Context(), k)
	if err != nil {
		return err
	}
	resp := lookupResponse{Entries: make([]string, len(sealed)), Members: []MemberKey{}, Self: n.cfg.NodeID}
	if ek, ok := n.opt.Index.(EntryKeys); ok && n.cfg.Shielded {
		resp.SelfEntryKey = encodeEntryKey(ek.EntryKey(k))
	}
	if n.opt.Peers != nil {
		if ms := n.opt.Peers.MemberKeys(); ms != nil {
			resp.Members = ms
		}
	}
	for i, e := range sealed {
		resp.Entries[i] = base64.StdEncoding.EncodeToString(e)
	}
	n.audit(r.Context(), AuditEvent{Action: "lookup", Actor: p.Name, Purpose: req.Purpose, Count: len(sealed), Outcome: "ok", Subject: [][16]byte{k}})
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (req *evaluateRequest) elements() int { return len(req.Blinded) }

// blindedElements counts the issuer's cost of an evaluation.
type blindedElements [][]byte

func (b blindedElements) elements() int { return len(b) }

package audit

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Witnessing, in the manner of Certificate Transparency: every node offers
// its signed tree head to the other members at an interval, with an RFC
// 9162 consistency proof from the head the member already holds. A member
// (the witness) keeps the latest head of every node that extends the one
// before, verified under that node's key, and refuses — keeping both heads
// as evidence — one that does not: a log cut short or rewritten after its
// head was witnessed can no longer be passed off as intact, since
// `signpost audit verify --witnessed` checks the log against the heads the
// witnesses hold. A head names a log size and root only: witnesses learn
// how many events a node audits, nothing about them.

// WitnessFileName is the witness's file in the data directory: the heads it
// holds for other nodes and the evidence of forks.
const WitnessFileName = "audit-heads.json"

// Bounds of what a witness accepts and keeps.
const (
	// maxProof bounds a consistency proof: 2·log2(size) hashes suffice for
	// any log of up to 2^32 events.
	maxProof = 64
	// maxForks bounds the evidence kept per node (the first ones are the
	// ones that matter; later offers repeat them).
	maxForks = 16
)

// HeadOffer is what a node sends its witnesses: its signed tree head and,
// when From is not 0, a consistency proof from the head of size From (the
// one the witness said it holds) to this one.
type HeadOffer struct {
	TreeHead
	From  uint64 `json:"from,omitempty"`
	Proof []Hash `json:"proof,omitempty"`
}

// DecodeHeadOffer reads a head offer strictly (unknown or duplicated keys,
// trailing data and oversized input refused), with a signature of the right
// size, a size of at least 1, From at most the size and a bounded proof.
// It does not check the signature: the witness does, with the sender's key.
func DecodeHeadOffer(b []byte) (HeadOffer, error) {
	var o HeadOffer
	if len(b) > maxHeadFile {
		return o, fmt.Errorf("%w: a head offer over %d bytes", ErrMalformed, maxHeadFile)
	}
	if err := decodeStrict(b, &o); err != nil {
		return HeadOffer{}, fmt.Errorf("%w: head offer: %v", ErrMalformed, err)
	}
	switch {
	case o.Size == 0:
		return HeadOffer{}, fmt.Errorf("%w: head offer of size 0", ErrMalformed)
	case len(o.Sig) != ed25519.SignatureSize:
		return HeadOffer{}, fmt.Errorf("%w: head offer signature of %d bytes", ErrMalformed, len(o.Sig))
	case o.From > o.Size:
		return HeadOffer{}, fmt.Errorf("%w: proof from size %d beyond the head's %d", ErrMalformed, o.From, o.Size)
	case len(o.Proof) > maxProof:
		return HeadOffer{}, fmt.Errorf("%w: proof of %d hashes", ErrMalformed, len(o.Proof))
	case o.From == 0 && len(o.Proof) > 0:
		return HeadOffer{}, fmt.Errorf("%w: a proof without its starting size", ErrMalformed)
	}
	return o, nil
}

// Offer outcomes.
const (
	// OfferAccepted: the head is held now (or already was).
	OfferAccepted = "accepted"
	// OfferNeedProof: the witness holds a head of size Held and needs a
	// consistency proof from it.
	OfferNeedProof = "need-proof"
	// OfferInconsistent: the head does not extend the one held (smaller,
	// another root at the same size, or a failing proof); the witness keeps
	// its head and records both as evidence.
	OfferInconsistent = "inconsistent"
)

// OfferResult is the witness's answer to a [HeadOffer].
type OfferResult struct {
	Status string `json:"status"`
	// Held is the size of the head the witness holds after the offer.
	Held uint64 `json:"held"`
}

// Fork is evidence that a node signed two heads that cannot both be
// prefixes of one log.
type Fork struct {
	Held    TreeHead  `json:"held"`
	Offered TreeHead  `json:"offered"`
	Time    time.Time `json:"time"`
	Reason  string    `json:"reason"`
}

// NodeHead is the head a witness holds for one node, when it accepted it,
// and any evidence of forks.
type NodeHead struct {
	Node string `json:"node"`
	TreeHead
	Time  time.Time `json:"time"`
	Forks []Fork    `json:"forks,omitempty"`
}

// ErrBadOffer means a head offer's signature does not verify under the
// sender's key: it is refused and nothing is recorded (a node cannot be
// framed by a head it did not sign).
var ErrBadOffer = errors.New("audit: head offer not signed by the node's key")

// Witness holds the latest heads of other nodes' logs, persisted in a file
// so that a restart keeps them. Safe for concurrent use.
type Witness struct {
	path string
	now  func() time.Time
	mu   sync.Mutex
	held map[string]*NodeHead
}

// witnessFile is the file's shape.
type witnessFile struct {
	Nodes []NodeHead `json:"nodes"`
}

// OpenWitness loads the witness file at path (none yet: an empty witness).
func OpenWitness(path string, now func() time.Time) (*Witness, error) {
	if now == nil {
		now = time.Now
	}
	w := &Witness{path: path, now: now, held: map[string]*NodeHead{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: witness file: %w", err)
	}
	var f witnessFile
	if err := decodeStrict(b, &f); err != nil {
		return nil, fmt.Errorf("audit: witness file %s: %v", path, err)
	}
	for i := range f.Nodes {
		h := f.Nodes[i]
		if h.Node == "" || h.Size == 0 || w.held[h.Node] != nil {
			return nil, fmt.Errorf("audit: witness file %s: entry %d is empty or repeated", path, i+1)
		}
		w.held[h.Node] = &h
	}
	return w, nil
}

// Offer considers a head offered by node, whose key is pub (from its
// enrolled descriptor). See the outcomes above; an error means the offer
// was refused without a trace ([ErrBadOffer]) or the file could not be
// written.
func (w *Witness) Offer(node string, pub ed25519.PublicKey, o HeadOffer) (OfferResult, error) {
	if err := o.VerifySignature(pub); err != nil {
		return OfferResult{}, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	offered := TreeHead{Size: o.Size, Root: o.Root, Sig: o.Sig}
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.held[node]
	if h == nil {
		w.held[node] = &NodeHead{Node: node, TreeHead: offered, Time: w.now().UTC()}
		return OfferResult{Status: OfferAccepted, Held: o.Size}, w.saveLocked()
	}
	reason := ""
	switch {
	case o.Size == h.Size && o.Root == h.Root:
		return OfferResult{Status: OfferAccepted, Held: h.Size}, nil
	case o.Size == h.Size:
		reason = "another root at the same size"
	case o.Size < h.Size:
		reason = "smaller than the head held (lines removed from the end, or a new log)"
	case o.From != h.Size:
		return OfferResult{Status: OfferNeedProof, Held: h.Size}, nil
	default:
		if err := VerifyConsistency(h.Size, o.Size, o.Proof, h.Root, o.Root); err != nil {
			reason = "not an extension of the head held (consistency proof fails)"
			break
		}
		h.TreeHead, h.Time = offered, w.now().UTC()
		return OfferResult{Status: OfferAccepted, Held: h.Size}, w.saveLocked()
	}
	// A node repeats its offer every round: keep each distinct fork once.
	for _, f := range h.Forks {
		if f.Offered.Size == offered.Size && f.Offered.Root == offered.Root {
			return OfferResult{Status: OfferInconsistent, Held: h.Size}, nil
		}
	}
	if len(h.Forks) < maxForks {
		h.Forks = append(h.Forks, Fork{Held: h.TreeHead, Offered: offered, Time: w.now().UTC(), Reason: reason})
	}
	return OfferResult{Status: OfferInconsistent, Held: h.Size}, w.saveLocked()
}

// Held returns the head held for node.
func (w *Witness) Held(node string) (NodeHead, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.held[node]
	if h == nil {
		return NodeHead{}, false
	}
	return cloneHead(*h), true
}

// All returns the heads held for every node, by node id.
func (w *Witness) All() []NodeHead {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]NodeHead, 0, len(w.held))
	for _, h := range w.held {
		out = append(out, cloneHead(*h))
	}
	slices.SortFunc(out, func(a, b NodeHead) int { return strings.Compare(a.Node, b.Node) })
	return out
}

func cloneHead(h NodeHead) NodeHead {
	h.Forks = slices.Clone(h.Forks)
	return h
}

// saveLocked writes the file atomically. REQUIRES: w.mu.
func (w *Witness) saveLocked() error {
	f := witnessFile{Nodes: make([]NodeHead, 0, len(w.held))}
	for _, h := range w.held {
		f.Nodes = append(f.Nodes, *h)
	}
	slices.SortFunc(f.Nodes, func(a, b NodeHead) int { return strings.Compare(a.Node, b.Node) })
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return fmt.Errorf("audit: witness file: %w", err)
	}
	if err := writeFileAtomic(w.path, append(b, '\n'), true); err != nil {
		return fmt.Errorf("audit: witness file: %w", err)
	}
	return nil
}

package adapter

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/node/internal/secrethook"
	"github.com/signpost-federation/signpost/node/port"
	"github.com/signpost-federation/signpost/wasm"
)

// Keyring implements port.Keyring: the federation's verified token keys
// (the authority-signed key records, which the assembly feeds in with
// SetKeys whenever the federation adopts new ones) and this node's own
// shares (AddShare). A share is used only while a key set names this node
// with that very public share: after a reshare has moved the key to other
// issuers, or to a new share here, an old share is never used again. Safe
// for concurrent use.
type Keyring struct {
	self string

	mu     sync.RWMutex
	sets   []port.KeySet // valid, newest epoch last per purpose
	shares map[keyID]*wasm.ShareIssuer
}

type keyID struct {
	purpose string
	epoch   uint32
}

// NewKeyring returns an empty keyring for the node self.
func NewKeyring(self string) *Keyring {
	return &Keyring{self: self, shares: make(map[keyID]*wasm.ShareIssuer)}
}

// SetKeys replaces the key sets. Each is checked as the wasm module will
// check it (wasm.KeySet.Validate: purpose rule, t ≤ n, unique indices and
// node ids, valid elements all on one polynomial); invalid ones are left
// out and reported together, the valid ones are kept.
func (k *Keyring) SetKeys(sets []port.KeySet) error {
	var kept []port.KeySet
	var errs []error
	for _, ks := range sets {
		if ks.Epoch == 0 {
			errs = append(errs, fmt.Errorf("key %s: epoch 0 is reserved for \"current\"", ks.Purpose))
			continue
		}
		if err := WasmKeySet(ks).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("key %s epoch %d: %w", ks.Purpose, ks.Epoch, err))
			continue
		}
		kept = append(kept, ks)
	}
	slices.SortFunc(kept, func(a, b port.KeySet) int {
		if a.Purpose != b.Purpose {
			return cmpStr(a.Purpose, b.Purpose)
		}
		return int(a.Epoch) - int(b.Epoch)
	})
	k.mu.Lock()
	k.sets = kept
	k.mu.Unlock()
	return errors.Join(errs...)
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// AddShare gives the keyring this node's share of (purpose, epoch).
func (k *Keyring) AddShare(purpose string, epoch uint32, s *wasm.ShareIssuer) {
	k.mu.Lock()
	k.shares[keyID{purpose, epoch}] = s
	k.mu.Unlock()
}

// KeySet implements port.Keyring.
func (k *Keyring) KeySet(purpose string, epoch uint32) (port.KeySet, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var found *port.KeySet
	for i := range k.sets {
		ks := &k.sets[i]
		if ks.Purpose == purpose && (epoch == 0 || ks.Epoch == epoch) {
			found = ks // sorted by epoch: the last match is the newest
		}
	}
	if found == nil {
		if epoch == 0 {
			return port.KeySet{}, fmt.Errorf("%w: %s", port.ErrNoKey, purpose)
		}
		return port.KeySet{}, fmt.Errorf("%w: %s epoch %d", port.ErrNoKey, purpose, epoch)
	}
	return *found, nil
}

// All implements port.Keyring.
func (k *Keyring) All() []port.KeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return slices.Clone(k.sets)
}

// Share implements port.Keyring: this node's share of the key, if the key
// set names this node with the share's public key.
func (k *Keyring) Share(purpose string, epoch uint32) port.Share {
	ks, err := k.KeySet(purpose, epoch)
	if err != nil {
		return nil
	}
	k.mu.RLock()
	s := k.shares[keyID{ks.Purpose, ks.Epoch}]
	k.mu.RUnlock()
	if s == nil {
		return nil
	}
	ik, ok := ks.Issuer(s.Index())
	if !ok || ik.NodeID != k.self || !bytes.Equal(ik.PublicShare, s.PublicShare()) {
		return nil
	}
	return s
}

// VerifyPartial implements port.Keyring with the native build of the
// module's own check (wasm.VerifyPartial).
func (k *Keyring) VerifyPartial(ks port.KeySet, blinded [][]byte, p port.Partial) error {
	return wasm.VerifyPartial(WasmKeySet(ks), blinded, wasm.Partial{Index: p.Index, Evaluated: p.Evaluated, Proof: p.Proof})
}

// PortKeySet converts the wasm package's key set to the node's.
func PortKeySet(ks wasm.KeySet) port.KeySet {
	p := port.KeySet{Purpose: ks.Purpose, Epoch: ks.Epoch, T: ks.T, GroupKey: ks.GroupKey, Issuers: make([]port.IssuerKey, len(ks.Shares))}
	for i, s := range ks.Shares {
		p.Issuers[i] = port.IssuerKey{NodeID: s.NodeID, Index: s.Index, PublicShare: s.Key}
	}
	return p
}

var _ port.Keyring = (*Keyring)(nil)

// KeySource is where a FederationKeyring reads the federation's keys: the
// federation agent (its verified key records in force, and this node's
// share files, checked against the records, which it erases once a key is
// retired).
type KeySource interface {
	KeyRecords() []*federation.KeyRecord
	Share(purpose string, epoch uint32) (*dkg.Share, error)
	EraseOldShares(purpose string, epoch uint32) ([]string, error)
}

// FederationKeyring is the production Keyring: it follows the agent's key
// records as they are adopted (a DKG's, a reshare's, a rotation's) and
// loads this node's share of a key on first use, keeping it in memory only
// as a wasm.ShareIssuer (the file's bytes are erased). A key is in force
// from its record's NotBefore until its RetireAt; the current key of a
// purpose is its newest epoch in force. When a key this node issues is
// retired, the keyring forgets its share and has the agent erase the share
// files (Agent.EraseOldShares), once.
type FederationKeyring struct {
	src  KeySource
	self string
	now  func() time.Time

	mu     sync.Mutex
	serial string   // fingerprint of the records the keyring was last built from
	kr     *Keyring // rebuilt when the records change
	failed map[keyID]time.Time
	erased map[keyID]bool // retired keys whose share files were erased
}

// NewFederationKeyring returns the keyring of node self over src; now
// defaults to time.Now.
func NewFederationKeyring(src KeySource, self string, now func() time.Time) *FederationKeyring {
	if now == nil {
		now = time.Now
	}
	return &FederationKeyring{src: src, self: self, now: now, failed: make(map[keyID]time.Time), erased: make(map[keyID]bool)}
}

// current returns the keyring for the records in force now.
func (f *FederationKeyring) current() *Keyring {
	recs := f.src.KeyRecords()
	now := f.now()
	var b strings.Builder
	var sets []port.KeySet
	var retired []keyID
	for _, r := range recs {
		if !r.RetireAt.IsZero() && !now.Before(r.RetireAt) {
			if _, mine := r.Issuer(f.self); mine {
				retired = append(retired, keyID{r.Purpose, r.Epoch})
			}
			continue
		}
		if now.Before(r.NotBefore) {
			continue
		}
		fmt.Fprintf(&b, "%s/%d/%d;", r.Purpose, r.Epoch, r.Serial)
		ks := port.KeySet{Purpose: r.Purpose, Epoch: r.Epoch, T: r.T, GroupKey: r.GroupKey}
		for _, is := range r.Issuers {
			ks.Issuers = append(ks.Issuers, port.IssuerKey{NodeID: is.NodeID, Index: is.Index, PublicShare: is.PublicShare})
		}
		sets = append(sets, ks)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range retired {
		if !f.erased[id] {
			// Tried once per process (every tokenisation comes here): a
			// failure is tried again at the next start, and the operator
			// can erase by hand (docs/DESIGN.md, key rotation).
			f.erased[id] = true
			_, _ = f.src.EraseOldShares(id.purpose, id.epoch)
		}
	}
	if f.kr != nil && f.serial == b.String() {
		return f.kr
	}
	kr := NewKeyring(f.self)
	// The records were verified by the agent (authority signature, shape);
	// SetKeys checks them once more as the module will.
	_ = kr.SetKeys(sets)
	if f.kr != nil {
		// Keep the shares already loaded; Keyring.Share uses one only
		// while a record names it.
		f.kr.mu.RLock()
		for id, s := range f.kr.shares {
			if !slices.Contains(retired, id) {
				kr.shares[id] = s
			}
		}
		f.kr.mu.RUnlock()
	}
	f.kr, f.serial = kr, b.String()
	return kr
}

// KeySet implements port.Keyring.
func (f *FederationKeyring) KeySet(purpose string, epoch uint32) (port.KeySet, error) {
	return f.current().KeySet(purpose, epoch)
}

// All implements port.Keyring.
func (f *FederationKeyring) All() []port.KeySet { return f.current().All() }

// VerifyPartial implements port.Keyring.
func (f *FederationKeyring) VerifyPartial(ks port.KeySet, blinded [][]byte, p port.Partial) error {
	return f.current().VerifyPartial(ks, blinded, p)
}

// shareRetry is how long a share that failed to load is not tried again.
const shareRetry = 10 * time.Second

// Share implements port.Keyring, loading this node's share of the key from
// its share file on first use.
func (f *FederationKeyring) Share(purpose string, epoch uint32) port.Share {
	kr := f.current()
	if s := kr.Share(purpose, epoch); s != nil {
		return s
	}
	ks, err := kr.KeySet(purpose, epoch)
	if err != nil {
		return nil
	}
	if !slices.ContainsFunc(ks.Issuers, func(ik port.IssuerKey) bool { return ik.NodeID == f.self }) {
		return nil
	}
	id := keyID{ks.Purpose, ks.Epoch}
	f.mu.Lock()
	if at, ok := f.failed[id]; ok && f.now().Sub(at) < shareRetry {
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	sh, err := f.src.Share(ks.Purpose, ks.Epoch)
	if err != nil {
		f.mu.Lock()
		f.failed[id] = f.now()
		f.mu.Unlock()
		return nil
	}
	defer sh.Erase()
	if note := secrethook.Share; note != nil {
		note(sh.Value)
	}
	si, err := wasm.NewShareIssuer(sh.Index, sh.Value)
	if err != nil {
		return nil
	}
	kr.AddShare(ks.Purpose, ks.Epoch, si)
	return kr.Share(purpose, epoch)
}

var _ port.Keyring = (*FederationKeyring)(nil)

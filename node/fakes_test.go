package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signpost-federation/signpost/node/internal/leakscan"
	"github.com/signpost-federation/signpost/wasm"
)

// fakeTokenizer is a test double: HMAC instead of the POPRF. It checks the
// Modulus 11 rule so that API tests see real validation reasons, and
// registers every token and key it makes with the leak scanner.
type fakeTokenizer struct {
	mu    sync.Mutex
	calls int
	fail  error
}

func (f *fakeTokenizer) Normalize(_ context.Context, in string) (string, error) {
	s := strings.NewReplacer(" ", "", "-", "").Replace(in)
	if len(s) != 10 {
		return "", fmt.Errorf("10 digits expected, got %d", len(s))
	}
	sum := 0
	for i := 0; i < 10; i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", errors.New("digits only")
		}
		if i < 9 {
			sum += int(s[i]-'0') * (10 - i)
		}
	}
	c := 11 - sum%11
	if c == 11 {
		c = 0
	}
	if c == 10 {
		return "", errors.New("no valid number starts with these digits; check it against the record")
	}
	if int(s[9]-'0') != c {
		return "", errors.New("the check digit does not match: this is not a valid number; check it against the record")
	}
	return s, nil
}

// setFail makes every later Keys call fail with err (nil: succeed).
func (f *fakeTokenizer) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeTokenizer) Keys(_ context.Context, _ Evaluator, purpose string, nums []string) ([]Keys, error) {
	f.mu.Lock()
	f.calls++
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	out := make([]Keys, len(nums))
	for i, n := range nums {
		m := hmac.New(sha256.New, []byte("test-key"))
		m.Write([]byte(purpose + "|" + n))
		sum := m.Sum(nil)
		copy(out[i].Lookup[:], sum[:16])
		out[i].Seal = sha256.Sum256(sum)
		leaks.NoteKey(leakscan.KindToken, sum, n)
		leaks.NoteKey(leakscan.KindLookup, out[i].Lookup[:], n)
		leaks.NoteKey(leakscan.KindSeal, out[i].Seal[:], n)
	}
	return out, nil
}

// fakeFed is an in-memory federation index shared by several nodes.
type fakeFed struct {
	mu      sync.Mutex
	entries map[[16]byte]map[string]fakeEntry
	subs    map[int]fakeSub
	next    int
}

type fakeEntry struct {
	Seal    [32]byte
	Holding Holding
	Version uint64
	Deleted bool
}

func newFakeFed() *fakeFed {
	return &fakeFed{entries: make(map[[16]byte]map[string]fakeEntry), subs: make(map[int]fakeSub)}
}

func (f *fakeFed) index(nodeID, agency string) *fakeIndex {
	return &fakeIndex{fed: f, nodeID: nodeID, agency: agency}
}

type fakeIndex struct {
	fed            *fakeFed
	nodeID, agency string
}

func (x *fakeIndex) put(k Keys, e fakeEntry) {
	f := x.fed
	f.mu.Lock()
	m := f.entries[k.Lookup]
	if m == nil {
		m = make(map[string]fakeEntry)
		f.entries[k.Lookup] = m
	}
	if old, ok := m[x.nodeID]; ok && old.Version >= e.Version {
		f.mu.Unlock()
		return
	}
	m[x.nodeID] = e
	var subs []func(IndexEvent)
	for _, s := range f.subs {
		if s.keys[k.Lookup] {
			subs = append(subs, s.fn)
		}
	}
	f.mu.Unlock()
	raw, _ := json.Marshal(e)
	for _, s := range subs {
		s(IndexEvent{Lookup: k.Lookup, Entry: raw, Deleted: e.Deleted})
	}
}

func (x *fakeIndex) Publish(_ context.Context, k Keys, category string, version uint64, registered, expires time.Time) error {
	x.put(k, fakeEntry{Seal: k.Seal, Holding: Holding{NodeID: x.nodeID, Agency: x.agency, Category: category, Since: registered}, Version: version})
	return nil
}

func (x *fakeIndex) Withdraw(_ context.Context, k Keys, version uint64, expires time.Time) error {
	x.put(k, fakeEntry{Seal: k.Seal, Holding: Holding{NodeID: x.nodeID}, Version: version, Deleted: true})
	return nil
}

func (x *fakeIndex) Lookup(_ context.Context, lookup [16]byte) ([]Sealed, error) {
	x.fed.mu.Lock()
	defer x.fed.mu.Unlock()
	var out []Sealed
	for _, e := range x.fed.entries[lookup] {
		if e.Deleted {
			continue
		}
		raw, _ := json.Marshal(e)
		out = append(out, raw)
	}
	return out, nil
}

func (x *fakeIndex) Open(_ context.Context, seal [32]byte, s Sealed) (Holding, error) {
	var e fakeEntry
	if err := json.Unmarshal(s, &e); err != nil {
		return Holding{}, err
	}
	if e.Seal != seal {
		return Holding{}, errors.New("wrong seal")
	}
	return e.Holding, nil
}

type fakeSub struct {
	keys map[[16]byte]bool
	fn   func(IndexEvent)
}

func (x *fakeIndex) Watch(keys [][16]byte, fn func(IndexEvent)) func() {
	f := x.fed
	f.mu.Lock()
	id := f.next
	f.next++
	ks := make(map[[16]byte]bool)
	for _, k := range keys {
		ks[k] = true
	}
	f.subs[id] = fakeSub{ks, fn}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	}
}

// fakeKeyring is a test double for the federation's token keys: one key
// per purpose at epoch 1, t of the issuers named, each "evaluating" by
// echoing the blinded elements with a proof that names its index. Shares
// are held by this node for the issuers listed in mine. VerifyPartial
// accepts a proof that names the partial's own index, so a test can forge
// one.
type fakeKeyring struct {
	t       int
	issuers []string // node ids; index = position + 1
	mine    map[string]bool
	calls   atomic.Int64
	fail    error  // every share's Evaluate fails with it
	forge   bool   // every share's proof is forged (fails VerifyPartial)
	epoch   uint32 // of every key; 0 means 1
}

func (k *fakeKeyring) theEpoch() uint32 { return max(k.epoch, 1) }

// soloKeyring is a 1-of-1 key held by id itself: the plain single-node
// setup of most API tests.
func soloKeyring(id string) *fakeKeyring {
	return &fakeKeyring{t: 1, issuers: []string{id}, mine: map[string]bool{id: true}}
}

func (k *fakeKeyring) keySet(purpose string) KeySet {
	ks := KeySet{Purpose: purpose, Epoch: k.theEpoch(), T: k.t, GroupKey: []byte("group-key")}
	for i, id := range k.issuers {
		ks.Issuers = append(ks.Issuers, IssuerKey{NodeID: id, Index: uint16(i + 1), PublicShare: []byte("share-" + id)})
	}
	return ks
}

func (k *fakeKeyring) KeySet(purpose string, epoch uint32) (KeySet, error) {
	if epoch != 0 && epoch != k.theEpoch() {
		return KeySet{}, ErrNoKey
	}
	return k.keySet(purpose), nil
}

func (k *fakeKeyring) All() []KeySet {
	return []KeySet{k.keySet("direct-care"), k.keySet("safeguarding")}
}

func (k *fakeKeyring) Share(purpose string, epoch uint32) Share {
	if epoch != 0 && epoch != k.theEpoch() {
		return nil
	}
	for i, id := range k.issuers {
		if k.mine[id] {
			return fakeShare{k: k, index: uint16(i + 1)}
		}
	}
	return nil
}

func (k *fakeKeyring) VerifyPartial(ks KeySet, blinded [][]byte, p Partial) error {
	if string(p.Proof) != fmt.Sprintf("proof-%d", p.Index) || len(p.Evaluated) != len(blinded) {
		return errors.New("fake proof does not verify")
	}
	if _, ok := ks.Issuer(p.Index); !ok {
		return errors.New("unknown issuer index")
	}
	return nil
}

type fakeShare struct {
	k     *fakeKeyring
	index uint16
}

func (s fakeShare) Index() uint16 { return s.index }

func (s fakeShare) EvaluateUnproven(blinded [][]byte) ([][]byte, error) {
	ev, _, err := s.Evaluate(blinded)
	return ev, err
}

func (s fakeShare) Evaluate(blinded [][]byte) ([][]byte, []byte, error) {
	s.k.calls.Add(1)
	if s.k.fail != nil {
		return nil, nil, s.k.fail
	}
	if s.k.forge {
		return blinded, []byte("forged"), nil
	}
	return blinded, []byte(fmt.Sprintf("proof-%d", s.index)), nil
}

// syntheticNumbers returns n valid NHS numbers from the 999 test range,
// made by the wasm module's generator (the one home of Modulus 11).
func syntheticNumbers(n int) []string { return wasm.GenerateTestNumbers(1, n) }

// Find implements Index: Lookup and Open, dropping what fails to open.
func (x *fakeIndex) Find(ctx context.Context, k Keys) ([]Holding, int, error) {
	sealed, err := x.Lookup(ctx, k.Lookup)
	if err != nil {
		return nil, 0, err
	}
	var out []Holding
	dropped := 0
	for _, s := range sealed {
		h, err := x.Open(ctx, k.Seal, s)
		if err != nil {
			dropped++
			continue
		}
		out = append(out, h)
	}
	return out, dropped, nil
}

// PublishBatch implements BatchIndex as Publish does, one by one, so that
// the node's tests run its batched publishing path (refusingIndex and
// failingIndex, which embed the Index interface, run the other).
func (x *fakeIndex) PublishBatch(ctx context.Context, pubs []Publication) []error {
	errs := make([]error, len(pubs))
	for i, p := range pubs {
		errs[i] = x.Publish(ctx, p.Keys, p.Category, p.Version, p.Registered, p.Expires)
	}
	return errs
}

var _ BatchIndex = (*fakeIndex)(nil)

package adapter

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/port"
	"github.com/signpost-federation/signpost/wasm/sealed"
)

// LocatorIndex is the production Index: this node's locator Holder signs
// and seals its entries, publish sends them into the federation (the
// agent's Publish, which also applies them to the local replica), and reads
// go to the replica.
type LocatorIndex struct {
	holder  *locator.Holder
	store   locator.Store
	publish func(context.Context, *locator.Entry) (locator.Outcome, error)
	// publishBatch writes many entries at once (nil: one publish each).
	publishBatch func(context.Context, []*locator.Entry) ([]locator.Outcome, error)
	keys         locator.NodeKeys
	now          func() time.Time
	// broker, if set, makes every entry shielded: it names broker, whose
	// key comes from keys at each write (WithBroker).
	broker string
	// relay, if set, takes this node's entries instead of publish: a
	// shielded node hands them to its broker (WithRelay).
	relay func(context.Context, port.ShieldedEntries) error
}

// NewLocatorIndex binds an Index to a holder, a replica, a publish function
// (nil: apply to the replica directly, for a node without federation) and
// the membership's node keys.
func NewLocatorIndex(holder *locator.Holder, store locator.Store, publish func(context.Context, *locator.Entry) (locator.Outcome, error), keys locator.NodeKeys, now func() time.Time) *LocatorIndex {
	if now == nil {
		now = time.Now
	}
	x := &LocatorIndex{holder: holder, store: store, publish: publish, keys: keys, now: now}
	if x.publish == nil {
		x.publish = func(_ context.Context, e *locator.Entry) (locator.Outcome, error) {
			return store.Apply(x.now(), e)
		}
		x.publishBatch = func(_ context.Context, es []*locator.Entry) ([]locator.Outcome, error) {
			return store.ApplyBatch(x.now(), es)
		}
	}
	return x
}

// WithPublishBatch sets the function that publishes many entries at once
// (the federation agent's PublishBatch, one replica transaction), for a
// LocatorIndex whose publish function is not the replica's own. It returns
// x.
func (x *LocatorIndex) WithPublishBatch(fn func(context.Context, []*locator.Entry) ([]locator.Outcome, error)) *LocatorIndex {
	x.publishBatch = fn
	return x
}

// WithBroker makes the index publish shielded entries that name broker
// (locator.Holder.WithBroker), with the broker's key as the membership
// knows it at each write; while the broker is not a member, writes fail
// with port.ErrBrokerUnavailable (and wait in the node's outbox). It
// returns x.
func (x *LocatorIndex) WithBroker(broker string) *LocatorIndex {
	x.broker = broker
	return x
}

// WithRelay makes the index hand every entry it builds to fn (in calls of
// at most port.MaxShieldedEntries) instead of publishing it: a shielded
// node's broker publishes them, and the entries reach this node's replica
// back through the federation. An entry fn did not take fails its write,
// which waits in the node's outbox. It returns x.
func (x *LocatorIndex) WithRelay(fn func(context.Context, port.ShieldedEntries) error) *LocatorIndex {
	x.relay = fn
	return x
}

// handOver gives es to the relay, in calls of at most
// port.MaxShieldedEntries.
func (x *LocatorIndex) handOver(ctx context.Context, es []*locator.Entry) error {
	for len(es) > 0 {
		n := min(len(es), port.MaxShieldedEntries)
		var body port.ShieldedEntries
		for _, e := range es[:n] {
			body.Entries = append(body.Entries, e.Encode())
		}
		if err := x.relay(ctx, body); err != nil {
			return fmt.Errorf("node: hand shielded entries to the broker: %w", err)
		}
		es = es[n:]
	}
	return nil
}

// RelayEntries implements port.EntryRelay: each encoding is decoded and
// published (verified and merged by the replica, then pushed); a stale
// version counts as applied (the federation has it or newer).
func (x *LocatorIndex) RelayEntries(ctx context.Context, encodings [][]byte) (int, error) {
	applied := 0
	for i, b := range encodings {
		e, err := locator.DecodeEntry(b)
		if err != nil {
			return applied, fmt.Errorf("node: relayed entry %d: %w", i, err)
		}
		if err := x.publishOwn(ctx, e); err != nil {
			return applied, fmt.Errorf("node: relayed entry %d: %w", i, err)
		}
		applied++
	}
	return applied, nil
}

var _ port.EntryRelay = (*LocatorIndex)(nil)

// writer returns the holder that builds this node's entries now: the
// node's own, or, for a shielded node, one that seals to its broker.
func (x *LocatorIndex) writer() (*locator.Holder, error) {
	if x.broker == "" {
		return x.holder, nil
	}
	key, ok := x.keys.NodeKey(x.broker)
	if !ok {
		return nil, fmt.Errorf("node: shielded entries name broker %q: %w", x.broker, port.ErrBrokerUnavailable)
	}
	h, err := x.holder.WithBroker(x.broker, key)
	if err != nil {
		return nil, fmt.Errorf("node: broker %q: %w", x.broker, err)
	}
	return h, nil
}

// PublishBatch implements port.BatchIndex: the entries are built (signed
// and sealed) on every core and written in one transaction; each
// publication's error is the one Publish would have returned.
func (x *LocatorIndex) PublishBatch(ctx context.Context, pubs []port.Publication) []error {
	errs := make([]error, len(pubs))
	holder, err := x.writer()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	entries := make([]*locator.Entry, len(pubs))
	workers := min(runtime.GOMAXPROCS(0), (len(pubs)+31)/32)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(pubs); i += workers {
				p := pubs[i]
				// As Publish: a version the replica already holds is skipped.
				if old, ok, err := x.store.Get(x.holder.EntryID(locator.LookupKey(p.Keys.Lookup))); err == nil && ok && old.Version >= p.Version {
					continue
				}
				e, err := holder.Publish(locator.LookupKey(p.Keys.Lookup), locator.SealKey(p.Keys.Seal), p.Category, p.Version, p.Registered, p.Expires)
				if err != nil {
					errs[i] = fmt.Errorf("node: build entry: %w", err)
					continue
				}
				entries[i] = e
			}
		}(w)
	}
	wg.Wait()
	var batch []*locator.Entry
	var at []int
	for i, e := range entries {
		if e != nil {
			batch = append(batch, e)
			at = append(at, i)
		}
	}
	if len(batch) == 0 {
		return errs
	}
	if x.relay != nil {
		if err := x.handOver(ctx, batch); err != nil {
			for j := range batch {
				errs[at[j]] = err
			}
		}
		return errs
	}
	if x.publishBatch == nil {
		for j, e := range batch {
			errs[at[j]] = x.apply(ctx, e)
		}
		return errs
	}
	outs, err := x.publishBatch(ctx, batch)
	for j, e := range batch {
		switch {
		case err != nil:
			errs[at[j]] = err
		case outs[j].Result == locator.Rejected && !errors.Is(outs[j].Reason.Err(), locator.ErrStale):
			errs[at[j]] = fmt.Errorf("apply entry %s version %d: %w", e.ID(), e.Version, outs[j].Reason.Err())
		}
	}
	return errs
}

// apply publishes one of this node's entries, or hands it to the broker.
func (x *LocatorIndex) apply(ctx context.Context, e *locator.Entry) error {
	if x.relay != nil {
		return x.handOver(ctx, []*locator.Entry{e})
	}
	return x.publishOwn(ctx, e)
}

// publishOwn publishes e into the federation (this node's replica first).
func (x *LocatorIndex) publishOwn(ctx context.Context, e *locator.Entry) error {
	if _, err := x.publish(ctx, e); err != nil && !errors.Is(err, locator.ErrStale) {
		return err // ErrStale: an equal or newer version is already there
	}
	return nil
}

// Publish implements Index.
func (x *LocatorIndex) Publish(ctx context.Context, k port.Keys, category string, version uint64, registered, expires time.Time) error {
	// A republication (restart) of a version the replica already holds is
	// skipped: a fresh seal nonce would make it a different encoding and
	// travel the federation again for nothing.
	if old, ok, err := x.store.Get(x.holder.EntryID(locator.LookupKey(k.Lookup))); err == nil && ok && old.Version >= version {
		return nil
	}
	holder, err := x.writer()
	if err != nil {
		return err
	}
	e, err := holder.Publish(locator.LookupKey(k.Lookup), locator.SealKey(k.Seal), category, version, registered, expires)
	if err != nil {
		return fmt.Errorf("node: build entry: %w", err)
	}
	return x.apply(ctx, e)
}

var _ port.BatchIndex = (*LocatorIndex)(nil)

// Withdraw implements Index.
func (x *LocatorIndex) Withdraw(ctx context.Context, k port.Keys, version uint64, expires time.Time) error {
	holder, err := x.writer()
	if err != nil {
		return err
	}
	e, err := holder.Withdraw(locator.LookupKey(k.Lookup), locator.SealKey(k.Seal), version, expires)
	if err != nil {
		return fmt.Errorf("node: build tombstone: %w", err)
	}
	return x.apply(ctx, e)
}

// Lookup implements Index.
func (x *LocatorIndex) Lookup(ctx context.Context, lookup [16]byte) ([]port.Sealed, error) {
	es, err := x.store.Lookup(x.now(), locator.LookupKey(lookup))
	if err != nil {
		return nil, err
	}
	out := make([]port.Sealed, len(es))
	for i, e := range es {
		out[i] = e.Encode()
	}
	return out, nil
}

// Find implements port.Index with locator.LookupOpen: no entry is encoded
// and decoded again on the way.
func (x *LocatorIndex) Find(ctx context.Context, k port.Keys) ([]port.Holding, int, error) {
	fs, dropped, err := locator.LookupOpen(x.store, x.now(), locator.LookupKey(k.Lookup), locator.SealKey(k.Seal), x.keys)
	if err != nil {
		return nil, 0, err
	}
	out := make([]port.Holding, len(fs))
	for i, f := range fs {
		out[i] = x.holding(f.Entry, f.Holding)
	}
	return out, dropped, nil
}

// Open implements Index: decode, open with the seal key, verify the
// holder's node signature against membership. Failures are counted in the
// replica's rejection counters.
func (x *LocatorIndex) Open(ctx context.Context, seal [32]byte, s port.Sealed) (port.Holding, error) {
	e, err := locator.DecodeEntry(s)
	if err != nil {
		x.store.NoteRejected(locator.ReasonOf(err))
		return port.Holding{}, err
	}
	h, err := e.Open(locator.SealKey(seal), x.keys)
	if err != nil {
		x.store.NoteRejected(locator.ReasonOf(err))
		return port.Holding{}, err
	}
	return x.holding(e, h), nil
}

// EntryKey returns this node's entry key under lookup (node.EntryKeys).
func (x *LocatorIndex) EntryKey(lookup [16]byte) [32]byte {
	return x.holder.EntryPub(locator.LookupKey(lookup))
}

// holding is an opened entry as the core sees it.
func (x *LocatorIndex) holding(e *locator.Entry, h locator.Holding) port.Holding {
	out := port.Holding{NodeID: h.NodeID, Category: h.Category, Since: h.RegisteredAt, Own: e.EntryPub == x.holder.EntryPub(e.Lookup)}
	if h.Broker != "" {
		out.Broker, out.EntryPub, out.Shield = h.Broker, e.EntryPub, h.Inner
	}
	return out
}

// Watch implements Index with one locator watch and one goroutine.
func (x *LocatorIndex) Watch(keys [][16]byte, fn func(port.IndexEvent)) func() {
	lk := make([]locator.LookupKey, len(keys))
	for i, k := range keys {
		lk[i] = locator.LookupKey(k)
	}
	w := x.store.Watch(lk...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.C {
			fn(port.IndexEvent{Lookup: e.Lookup, Entry: e.Encode(), Deleted: e.Deleted})
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.Close()
			<-done
		})
	}
}

// NodeShields is the broker's port.Shields: this node's id and enrolled
// private key, and the membership's keys to check holders against.
type NodeShields struct {
	NodeID  string
	NodeKey ed25519.PrivateKey
	Keys    locator.NodeKeys
}

// OpenShield implements port.Shields with package wasm/sealed.
func (s NodeShields) OpenShield(lookup [16]byte, entryPub [32]byte, shield []byte) (string, error) {
	id, err := sealed.OpenShield(s.NodeKey, s.NodeID, lookup, entryPub, shield, s.Keys.NodeKey)
	if err != nil {
		return "", fmt.Errorf("%w: %w", port.ErrNotBroker, err)
	}
	return id.NodeID, nil
}

var _ port.Shields = NodeShields{}

// StaticNodeKeys is locator.NodeKeys over a fixed map (tests, and a node
// running without federation, which knows only its own key).
type StaticNodeKeys map[string]ed25519.PublicKey

// NodeKey implements locator.NodeKeys.
func (m StaticNodeKeys) NodeKey(id string) (ed25519.PublicKey, bool) {
	k, ok := m[id]
	return k, ok
}

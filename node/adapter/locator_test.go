package adapter

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/port"
)

// TestShieldedIndexHandsEntriesToBroker: a shielded node's index never
// publishes its own entries — it hands them, in bounded calls, to its
// broker, whose index publishes them (the broker's replica has them, the
// shielded node's has not, until the federation brings them back); a
// failed hand-over fails the write (it waits in the outbox); the broker
// refuses an entry that does not verify; while the broker is not a member
// nothing is built.
func TestShieldedIndexHandsEntriesToBroker(t *testing.T) {
	newStore := func() *locator.MemStore {
		s, err := locator.NewMemStore(locator.DefaultPolicy())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	holderKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	brokerKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	keys := StaticNodeKeys{"clinic": holderKey.Public().(ed25519.PublicKey), "hub": brokerKey.Public().(ed25519.PublicKey)}
	mustHolder := func(id string, k ed25519.PrivateKey, s byte) *locator.Holder {
		h, err := locator.NewHolder(id, k, [32]byte{s})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	now := time.Now()
	brokerStore, holderStore := newStore(), newStore()
	broker := NewLocatorIndex(mustHolder("hub", brokerKey, 2), brokerStore, nil, keys, nil)
	var calls []int
	fail := false
	published := func(context.Context, *locator.Entry) (locator.Outcome, error) {
		t.Error("the shielded node published an entry itself")
		return locator.Outcome{}, nil
	}
	x := NewLocatorIndex(mustHolder("clinic", holderKey, 1), holderStore, published, keys, nil).WithBroker("hub").
		WithRelay(func(ctx context.Context, es port.ShieldedEntries) error {
			calls = append(calls, len(es.Entries))
			if fail {
				return errors.New("broker unreachable")
			}
			_, err := broker.RelayEntries(ctx, es.Entries)
			return err
		})
	ctx := context.Background()
	k := port.Keys{Lookup: [16]byte{9}, Seal: [32]byte{8}}
	if err := x.Publish(ctx, k, "sexual-health", 1, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if brokerStore.Len() != 1 || holderStore.Len() != 0 {
		t.Fatalf("after one publish: the broker holds %d entries, the shielded node %d", brokerStore.Len(), holderStore.Len())
	}
	found, _, err := broker.Find(ctx, k)
	if err != nil || len(found) != 1 || found[0].Broker != "hub" || found[0].NodeID != "" {
		t.Fatalf("at the broker the entry opens as %+v (%v)", found, err)
	}

	pubs := make([]port.Publication, 100)
	for i := range pubs {
		pubs[i] = port.Publication{Keys: port.Keys{Lookup: [16]byte{1, byte(i)}, Seal: [32]byte{7}}, Category: "sexual-health", Version: 1, Registered: now, Expires: now.Add(time.Hour)}
	}
	calls = nil
	for i, err := range x.PublishBatch(ctx, pubs) {
		if err != nil {
			t.Fatalf("publication %d: %v", i, err)
		}
	}
	if len(calls) != 3 || calls[0] != port.MaxShieldedEntries || brokerStore.Len() != 101 {
		t.Fatalf("a batch of 100 went in calls of %v; the broker holds %d", calls, brokerStore.Len())
	}
	if err := x.Withdraw(ctx, k, 2, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if e, ok, _ := brokerStore.Get(x.holder.EntryID(locator.LookupKey(k.Lookup))); !ok || !e.Deleted {
		t.Fatal("the tombstone did not reach the broker")
	}

	fail = true
	if err := x.Publish(ctx, k, "sexual-health", 3, now, now.Add(time.Hour)); err == nil {
		t.Fatal("a write the broker did not take succeeded")
	}
	fail = false

	signed := func(lookup byte) *locator.Entry {
		e, err := mustHolder("clinic", holderKey, 1).Publish(locator.LookupKey{lookup}, locator.SealKey{5}, "x", 1, now, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := signed(5)
	bad := bytes.Clone(signed(6).Encode())
	bad[len(bad)-1] ^= 1 // the entry signature
	if n, err := broker.RelayEntries(ctx, [][]byte{e.Encode(), bad}); err == nil || n != 1 {
		t.Fatalf("the broker took a bad entry: %d, %v", n, err)
	}

	noBroker := NewLocatorIndex(mustHolder("clinic", holderKey, 1), holderStore, published, StaticNodeKeys{}, nil).WithBroker("hub")
	if err := noBroker.Publish(ctx, k, "x", 9, now, now.Add(time.Hour)); !errors.Is(err, port.ErrBrokerUnavailable) {
		t.Fatalf("publishing while the broker is not a member: %v", err)
	}
}

package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/internal/records"
)

// clockedReplica is a locator replica and this node's holder on a test
// clock: it refuses entries past their expiry as every replica does.
func clockedReplica(t *testing.T, clock *testClock) (*locator.MemStore, *LocatorIndex) {
	t.Helper()
	store, err := locator.NewMemStore(locator.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	var secret [32]byte
	rand.Read(secret[:])
	h, err := locator.NewHolder("a", priv, secret)
	if err != nil {
		t.Fatal(err)
	}
	return store, NewLocatorIndex(h, store, nil, StaticNodeKeys{"a": pub}, clock.Now)
}

func mustImport(t *testing.T, n *testNode, csv string, want int) {
	t.Helper()
	rep, err := n.Import(context.Background(), strings.NewReader(csv), "op", nil)
	if err != nil || rep.Imported != want {
		t.Fatalf("import: %v %+v", err, rep)
	}
}

func mustHold(t *testing.T, n *testNode, id string, held bool) {
	t.Helper()
	_, err := n.records.Get(id)
	switch {
	case held && err != nil:
		t.Fatalf("record %s: %v", id, err)
	case !held && !errors.Is(err, records.ErrNotFound):
		t.Fatalf("record %s is still held past its retention end (%v)", id, err)
	}
}

// Republish skips a record whose retention has ended (before the sweep has
// removed it) instead of failing on its expired entry.
func TestRepublishSkipsRecordsPastRetention(t *testing.T) {
	clock := newTestClock()
	store, index := clockedReplica(t, clock)
	a := nodeWith(t, Options{Index: index, Now: clock.Now}, nil)
	mustImport(t, a, "keep,9990000018,,2030-01-01\nsoon,9990000026,,2026-11-25T10:00:00Z\n", 2)
	clock.Advance(2 * time.Hour)
	if _, err := store.Expire(clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Republish(context.Background()); err != nil {
		t.Fatalf("republish: %v", err)
	}
	if !a.ready.Load() || store.Len() != len(a.cfg.Purposes) {
		t.Fatalf("ready %v, %d entries in the replica; want ready and keep's %d", a.ready.Load(), store.Len(), len(a.cfg.Purposes))
	}
	mustHold(t, a, "soon", true) // skipped, not deleted
}

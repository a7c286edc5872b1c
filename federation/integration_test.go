package federation

import (
	"context"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestPublishReachesAll: an entry published on one of five real nodes is
// stored by all, and every node can open it (NodeKey answers for the
// holder), then all shut down without leaking goroutines.
func TestPublishReachesAll(t *testing.T) {
	f := newTestFed(t)
	agents := f.cluster(t, 5, false)
	h := holderOf(t, agents[2].cfg.Credentials)
	e, seal := testEntry(t, h)
	publish(t, agents[2], e)
	testutil.Eventually(t, convergeTimeout, func() error { return missing(agents, e.ID()) })
	for _, a := range agents {
		got, _, _ := a.Store().Get(e.ID())
		hold, err := got.Open(seal, a)
		if err != nil {
			t.Fatalf("%s cannot open the entry: %v", a.Self().NodeID, err)
		}
		if hold.NodeID != "node-2" {
			t.Fatalf("%s: holder %q, want node-2", a.Self().NodeID, hold.NodeID)
		}
	}
	s, err := agents[0].Stats(context.Background())
	if err != nil || s.Members != 4 || s.Entries != 1 {
		t.Fatalf("stats %+v, %v", s, err)
	}
	for _, a := range agents {
		if err := a.Leave(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := a.Shutdown(context.Background()); err != nil { // idempotent
			t.Fatal(err)
		}
	}
	testutil.VerifyNone(t)
}

// TestLeaveWithExpiredContext: Leave and Shutdown still complete (and stop
// every goroutine) when the context has already expired; memberlist would
// wait forever for a non-positive leave timeout.
func TestLeaveWithExpiredContext(t *testing.T) {
	f := newTestFed(t)
	agents := f.cluster(t, 2, false)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for _, a := range agents {
		if err := a.Leave(ctx); err != nil {
			t.Fatal(err)
		}
	}
	testutil.VerifyNone(t)
}

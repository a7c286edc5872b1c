package federation

import (
	"context"
	"testing"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestRestartCatchesUp: a node stopped and restarted with the same data
// directory keeps its replica (bolt) and the descriptors it had verified
// (so it can open entries before rejoining), and after rejoining catches
// up by anti-entropy on what was published while it was down. Two ways
// down: a graceful Leave (restarting on a new port), and a crash
// (Shutdown without Leave, restarting on the same gossip address, as a
// production node with a fixed port does).
func TestRestartCatchesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		graceful bool
	}{{"leave", true}, {"crash", false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFed(t)
			agents := f.cluster(t, 5, true)
			e1, seal1 := testEntry(t, holderOf(t, agents[0].cfg.Credentials))
			publish(t, agents[0], e1)
			testutil.Eventually(t, convergeTimeout, func() error { return missing(agents, e1.ID()) })

			down := agents[4]
			cfg := f.config(down.cfg.Credentials, down.cfg.DataDir)
			if tc.graceful {
				if err := down.Leave(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else {
				cfg.GossipBindAddr = down.GossipAddr()
				if err := down.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			up := agents[:4]
			e2, _ := testEntry(t, holderOf(t, agents[1].cfg.Credentials))
			publish(t, agents[1], e2)
			testutil.Eventually(t, convergeTimeout, func() error { return missing(up, e2.ID()) })

			back := startAgent(t, cfg)
			got, ok, err := back.Store().Get(e1.ID())
			if err != nil || !ok {
				t.Fatalf("replica lost across restart: %v %v", ok, err)
			}
			if _, err := got.Open(seal1, back); err != nil {
				t.Fatalf("cannot open before rejoining (descriptors not persisted?): %v", err)
			}
			if _, err := back.Join([]string{agents[2].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
			all := append(up[:4:4], back)
			waitMembers(t, all...)
			testutil.Eventually(t, convergeTimeout, func() error { return missing(all, e1.ID(), e2.ID()) })
			s, err := back.Stats(context.Background())
			if err != nil || s.Protocol.EntriesAccepted == 0 {
				t.Fatalf("restarted node accepted no entries from peers: %+v %v", s.Protocol, err)
			}
		})
	}
}

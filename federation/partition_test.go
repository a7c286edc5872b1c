package federation

import (
	"context"
	"fmt"
	"testing"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestPartitionHeals: five nodes split 3|2 by a fault-injecting transport
// (gossip and peer API both cut) until memberlist on each side declares
// the other dead; entries published on each side stay on that side; after
// the partition is lifted, the reconnect loop rejoins the sides and
// anti-entropy brings every replica to the same state.
func TestPartitionHeals(t *testing.T) {
	f := newTestFed(t)
	agents := make([]*Agent, 5)
	for i := range agents {
		agents[i] = startAgent(t, f.config(f.creds(t, fmt.Sprintf("node-%d", i)), ""),
			func(a *Agent) { a.faults = newFaultSet() })
		if i > 0 {
			if _, err := agents[i].Join([]string{agents[0].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitMembers(t, agents...)
	sideA, sideB := agents[:3], agents[3:]
	cut := func(from, to []*Agent) {
		var ids, addrs []string
		for _, a := range to {
			ids = append(ids, a.Self().NodeID)
			addrs = append(addrs, a.GossipAddr())
		}
		for _, a := range from {
			a.faults.set(ids, addrs)
		}
	}
	cut(sideA, sideB)
	cut(sideB, sideA)
	waitMembers(t, sideA...)
	waitMembers(t, sideB...)

	eA, _ := testEntry(t, holderOf(t, agents[0].cfg.Credentials))
	publish(t, agents[0], eA)
	eB, _ := testEntry(t, holderOf(t, agents[4].cfg.Credentials))
	publish(t, agents[4], eB)
	testutil.Eventually(t, convergeTimeout, func() error { return missing(sideA, eA.ID()) })
	testutil.Eventually(t, convergeTimeout, func() error { return missing(sideB, eB.ID()) })
	if missing(sideB, eA.ID()) == nil || missing(sideA, eB.ID()) == nil {
		t.Fatal("an entry crossed the partition")
	}

	for _, a := range agents {
		a.faults.set(nil, nil)
	}
	waitMembers(t, agents...)
	testutil.Eventually(t, convergeTimeout, func() error { return missing(agents, eA.ID(), eB.ID()) })
	for _, a := range agents {
		s, err := a.Stats(context.Background())
		if err != nil || s.Entries != 2 {
			t.Fatalf("%s: %+v %v", a.Self().NodeID, s, err)
		}
	}
}

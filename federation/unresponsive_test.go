package federation

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// unresponsiveFor is how long TestFalseDeathHidesNothing keeps a node cut
// off: long enough for memberlist to declare it dead many times over.
const unresponsiveFor = 30 * time.Second

// TestFalseDeathHidesNothing: one node of four stops answering (its gossip
// and peer API traffic dropped both ways, as a hung process or a broken
// link would) for 30 s, is declared dead by the others, and comes back.
// Throughout, every other node still finds its entry by lookup: a dead
// verdict withdraws nothing. Entries published on both sides while it was
// away reach everyone after it returns, with periodic anti-entropy off
// (one hour), so what brings them is the reaction to its return: the
// re-announcement of versions created while it was unreachable and the
// exchange started with it.
func TestFalseDeathHidesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps a node unresponsive for 30 s")
	}
	f := newTestFed(t)
	agents := make([]*Agent, 4)
	for i := range agents {
		cfg := f.config(f.creds(t, fmt.Sprintf("node-%d", i)), "")
		// No periodic exchange: the engine draws the first one uniformly
		// within one interval, so with an hour each of the four agents had
		// about a 2 % chance of one during a minute's run — and the test
		// failed now and then on a loaded machine, where it runs longer.
		// A century leaves only the exchanges the rejoin starts.
		cfg.Protocol.AntiEntropyInterval = 100 * 365 * 24 * time.Hour
		agents[i] = startAgent(t, cfg, func(a *Agent) { a.faults = newFaultSet() })
		if i > 0 {
			if _, err := agents[i].Join([]string{agents[0].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitMembers(t, agents...)
	quiet, others := agents[3], agents[:3]

	publishKeyed := func(a *Agent) (*locator.Entry, locator.LookupKey) {
		var lookup locator.LookupKey
		var seal locator.SealKey
		rand.Read(lookup[:])
		rand.Read(seal[:])
		now := time.Now()
		e, err := holderOf(t, a.cfg.Credentials).Publish(lookup, seal, "social-care", 1, now, now.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		publish(t, a, e)
		return e, lookup
	}
	visible := func(e *locator.Entry, key locator.LookupKey) error {
		for _, a := range others {
			got, err := a.Store().Lookup(time.Now(), key)
			if err != nil || len(got) != 1 || got[0].ID() != e.ID() {
				return fmt.Errorf("%s: lookup of %s's entry gave %d entries (err %v)", a.Self().NodeID, quiet.Self().NodeID, len(got), err)
			}
		}
		return nil
	}
	eQuiet, keyQuiet := publishKeyed(quiet)
	testutil.Eventually(t, convergeTimeout, func() error { return visible(eQuiet, keyQuiet) })

	// Cut it off both ways.
	var otherIDs, otherAddrs []string
	for _, a := range others {
		otherIDs = append(otherIDs, a.Self().NodeID)
		otherAddrs = append(otherAddrs, a.GossipAddr())
		a.faults.set([]string{quiet.Self().NodeID}, []string{quiet.GossipAddr()})
	}
	quiet.faults.set(otherIDs, otherAddrs)
	cutAt := time.Now()
	testutil.Eventually(t, convergeTimeout, func() error {
		for _, a := range others {
			for _, m := range a.Members() {
				if m.NodeID == quiet.Self().NodeID && m.Alive {
					return fmt.Errorf("%s still sees %s alive", a.Self().NodeID, m.NodeID)
				}
			}
		}
		return nil
	})
	t.Logf("declared dead %v after the cut", time.Since(cutAt).Round(time.Millisecond))
	eAway, _ := publishKeyed(quiet)
	eHere, _ := publishKeyed(others[1])
	sample := time.NewTicker(100 * time.Millisecond)
	defer sample.Stop()
	for time.Since(cutAt) < unresponsiveFor {
		if err := visible(eQuiet, keyQuiet); err != nil {
			t.Fatalf("%v after the cut: %v", time.Since(cutAt).Round(time.Millisecond), err)
		}
		<-sample.C
	}
	if missing([]*Agent{quiet}, eHere.ID()) == nil || missing(others, eAway.ID()) == nil {
		t.Fatal("an entry crossed the cut")
	}

	for _, a := range agents {
		a.faults.set(nil, nil)
	}
	back := time.Now()
	testutil.Eventually(t, convergeTimeout, func() error {
		if err := visible(eQuiet, keyQuiet); err != nil {
			return err
		}
		return missing(agents, eAway.ID(), eHere.ID())
	})
	t.Logf("caught up %v after it came back", time.Since(back).Round(time.Millisecond))
	var rejoins uint64
	for _, a := range agents {
		s, err := a.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rejoins += s.Protocol.Rejoins
		if s.Protocol.SessionsStarted != s.Protocol.RejoinExchanges {
			t.Fatalf("%s ran %d periodic exchanges", a.Self().NodeID, s.Protocol.SessionsStarted-s.Protocol.RejoinExchanges)
		}
	}
	if rejoins == 0 {
		t.Fatal("no member was reported back to an engine")
	}
}

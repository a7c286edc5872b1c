package federation

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/locator"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestBulkPublishKeepsMembershipHealthy: a bulk import at one of five real
// nodes reaches every replica while membership stays whole — no node is
// declared dead or leaves on any node's view while the entries flow. Entry
// traffic rides the peer API's bounded queues, not memberlist's, so it
// must not starve failure detection. Membership runs on memberlist's LAN
// timings here (not the shortened test timings), as in production.
func TestBulkPublishKeepsMembershipHealthy(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk publish on five real nodes")
	}
	const n = 10_000
	f := newTestFed(t)
	events := make([]chan MemberEvent, 5)
	agents := make([]*Agent, 5)
	for i := range agents {
		cfg := f.config(f.creds(t, fmt.Sprintf("node-%d", i)), "")
		cfg.ProbeInterval = time.Second
		cfg.ProbeTimeout = 500 * time.Millisecond
		events[i] = make(chan MemberEvent, 1024)
		cfg.Events = events[i]
		agents[i] = startAgent(t, cfg)
		if i > 0 {
			if _, err := agents[i].Join([]string{agents[0].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitMembers(t, agents...)
	for _, ch := range events { // the joins
		for len(ch) > 0 {
			<-ch
		}
	}

	h := holderOf(t, agents[0].cfg.Credentials)
	now := time.Now()
	ids := make([]locator.ID, 0, n)
	for range n {
		var lookup locator.LookupKey
		var seal locator.SealKey
		rand.Read(lookup[:])
		rand.Read(seal[:])
		e, err := h.Publish(lookup, seal, "social-care", 1, now, now.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		publish(t, agents[0], e)
		ids = append(ids, e.ID())
	}
	testutil.Eventually(t, 3*time.Minute, func() error {
		for _, a := range agents {
			if got := a.Store().Len(); got < n {
				return fmt.Errorf("%s holds %d of %d entries", a.Self().NodeID, got, n)
			}
		}
		return nil
	})
	if err := missing(agents, ids...); err != nil {
		t.Fatal(err)
	}
	for i, ch := range events {
		for len(ch) > 0 {
			if ev := <-ch; ev.Type == MemberLeft {
				t.Errorf("node-%d saw %s leave or fail during the bulk publish", i, ev.Member.NodeID)
			}
		}
	}
	for _, a := range agents {
		s, err := a.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.Members != 4 || s.EventsDropped != 0 {
			t.Errorf("%s after the bulk publish: %+v", a.Self().NodeID, s)
		}
		t.Logf("%s: sent %d, dropped %d, received %d, inbound dropped %d",
			a.Self().NodeID, s.Sent, s.SendDropped, s.Received, s.InboundDropped)
	}
}

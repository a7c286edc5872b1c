package federation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

// BenchmarkPropagation measures the time from Publish on one node until
// every node of an n-node loopback federation has stored the entry (a
// locator watch on every replica fires). Gossip timings are moderate
// (memberlist gossip 100ms, probe 500ms) so that 50 nodes share two cores;
// the protocol runs with its defaults (push every 200ms to 3 peers,
// anti-entropy every 10s) or, for "fast", push every 20ms and anti-entropy
// every 1s. Reported: mean (ns/op), p50, p90, p99 and max in ms. Run it with
//
//	go test -run '^$' -bench BenchmarkPropagation -benchtime 20x -timeout 30m ./federation/
func BenchmarkPropagation(b *testing.B) {
	for _, tc := range []struct {
		nodes int
		fast  bool
	}{{5, false}, {10, false}, {50, false}, {5, true}, {10, true}, {50, true}} {
		name := fmt.Sprintf("nodes=%d", tc.nodes)
		if tc.fast {
			name += "/fast"
		}
		b.Run(name, func(b *testing.B) { benchPropagation(b, tc.nodes, tc.fast) })
	}
}

func benchPropagation(b *testing.B, n int, fast bool) {
	f := newTestFed(b)
	agents := make([]*Agent, n)
	holders := make([]*locator.Holder, n)
	for i := range agents {
		cfg := f.config(f.creds(b, fmt.Sprintf("node-%d", i)), "")
		cfg.GossipInterval, cfg.ProbeInterval, cfg.ProbeTimeout = 100*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		cfg.PushPullInterval, cfg.ReconnectInterval = 5*time.Second, 2*time.Second
		cfg.Protocol = protocol.DefaultConfig()
		if fast {
			cfg.Protocol.PushInterval, cfg.Protocol.AntiEntropyInterval = 20*time.Millisecond, time.Second
		}
		agents[i] = startAgent(b, cfg)
		holders[i] = holderOf(b, cfg.Credentials)
		if i > 0 {
			if _, err := agents[i].Join([]string{agents[0].GossipAddr()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	waitMembersWithin(b, 5*time.Minute, agents...)
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	var took []time.Duration
	for b.Loop() {
		src := rng.IntN(n)
		e, _ := testEntry(b, holders[src])
		watches := make([]*locator.Watch, n)
		for i, a := range agents {
			watches[i] = a.Store().Watch(e.Lookup)
		}
		start := time.Now()
		publish(b, agents[src], e)
		for i, w := range watches {
			select {
			case <-w.C:
			case <-time.After(convergeTimeout):
				b.Fatalf("node-%d did not receive the entry", i)
			}
			w.Close()
		}
		took = append(took, time.Since(start))
	}
	var lost, sessions uint64
	for _, a := range agents {
		s, err := a.Stats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		lost += s.SendFailed + s.SendDropped + s.InboundDropped
		sessions += s.Protocol.SessionsStarted
		if testing.Verbose() {
			b.Logf("%s: %+v", a.Self().NodeID, s)
		}
	}
	b.ReportMetric(float64(lost), "lost-msgs")
	slices.Sort(took)
	ms := func(q float64) float64 {
		return float64(took[min(len(took)-1, int(q*float64(len(took))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.9), "p90-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
}

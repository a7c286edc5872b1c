package protocol_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

// BenchmarkReconcile measures one anti-entropy exchange between two
// replicas of n common entries that differ by d entries (held by one side),
// reporting bytes per differing entry. Setup dominates (10^6 entries take
// minutes to sign and verify); run with -benchtime=1x, e.g.
//
//	go test -run '^$' -bench 'Reconcile/set=10000$' -benchtime=1x ./federation/protocol
func BenchmarkReconcile(b *testing.B) {
	const maxDiff = 1000
	for _, n := range []int{10_000, 1_000_000} {
		var all []*locator.Entry // generated once per n, on first use
		b.Run(fmt.Sprintf("set=%d", n), func(b *testing.B) {
			for _, d := range []int{1, 100, maxDiff} {
				b.Run(fmt.Sprintf("diff=%d", d), func(b *testing.B) {
					if all == nil {
						all = syntheticEntries(b, uint64(n), n+maxDiff)
					}
					for b.Loop() {
						bytes, msgs := reconcilePair(b, 1, all[:n], all[n:n+d], 4, protocol.DefaultConfig(), nil)
						b.ReportMetric(float64(bytes)/float64(d), "B/diff")
						b.ReportMetric(float64(bytes), "B/exchange")
						b.ReportMetric(float64(msgs), "msgs/exchange")
					}
				})
			}
			// A deeper tree for a large set: ~1 entry per leaf.
			b.Run("depth=5/diff=100", func(b *testing.B) {
				if all == nil {
					all = syntheticEntries(b, uint64(n), n+maxDiff)
				}
				for b.Loop() {
					bytes, msgs := reconcilePair(b, 1, all[:n], all[n:n+100], 5, protocol.DefaultConfig(), nil)
					b.ReportMetric(float64(bytes)/100, "B/diff")
					b.ReportMetric(float64(msgs), "msgs/exchange")
				}
			})
		})
	}
}

// BenchmarkPushVisibility reports the virtual time for a new entry,
// published at one node, to reach every node by push alone (anti-entropy
// off), over protocoltest's network with 5–20 ms one-way latency and no
// loss, with the default Fanout 3 and PushInterval 200 ms. It reports the
// mean over 20 entries published one per second.
func BenchmarkPushVisibility(b *testing.B) {
	for _, n := range []int{5, 10, 50} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for b.Loop() {
				cfg := protocol.DefaultConfig()
				cfg.AntiEntropyInterval = time.Hour
				net := newNet(b, uint64(n), n, locator.Policy{DigestDepth: 2}, cfg)
				h := testHolder(b, 1)
				net.RunFor(time.Second)
				var total time.Duration
				missed := 0
				for i := range 20 {
					e := publish(b, h, i, 1)
					start := net.Now
					if _, err := net.Nodes()[i%n].Engine.Publish(net.Now, e); err != nil {
						b.Fatal(err)
					}
					ok := net.RunUntil(time.Minute, func() bool {
						for _, node := range net.Nodes() {
							if _, ok, _ := node.Store.Get(e.ID()); !ok {
								return false
							}
						}
						return true
					})
					if !ok {
						missed++
					}
					total += net.Now.Sub(start)
					net.RunFor(time.Second)
				}
				b.ReportMetric(float64(total.Milliseconds())/20, "virtual-ms/entry")
				b.ReportMetric(float64(missed), "missed")
			}
		})
	}
}

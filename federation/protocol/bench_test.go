package protocol_test

import (
	"fmt"
	"testing"

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
						bytes, msgs := reconcilePair(b, all[:n], all[n:n+d], 4, protocol.DefaultConfig(), nil)
						b.ReportMetric(float64(bytes)/float64(d), "B/diff")
						b.ReportMetric(float64(bytes), "B/exchange")
						b.ReportMetric(float64(msgs), "msgs/exchange")
					}
				})
			}
		})
	}
}

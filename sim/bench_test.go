package sim

import (
	"context"
	"testing"
)

// BenchmarkSteady runs the steady built-in at 1000 nodes (the acceptance
// figure: well under a minute on the 2-core machine); it reports virtual
// seconds simulated per wall second and the heap per node.
func BenchmarkSteady(b *testing.B) {
	sc, err := Builtin("steady")
	if err != nil {
		b.Fatal(err)
	}
	sc.Nodes = 1000
	for b.Loop() {
		r, err := Run(context.Background(), sc)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.VirtualSecs/r.Wall.Seconds, "virtual-s/s")
		b.ReportMetric(float64(r.Wall.HeapPerNode), "heap-B/node")
		b.ReportMetric(r.Wall.EventsPerSecond, "events/s")
	}
}

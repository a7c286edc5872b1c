package abi

import (
	"testing"

	"github.com/signpost-federation/signpost/wasm/internal/ident"
)

// BenchmarkHandleValidate is the module's side of a 4096-number validation
// (run it natively, or under a wasm runtime to see the module's own cost).
func BenchmarkHandleValidate(b *testing.B) {
	items := [][]byte{[]byte("nhs")}
	for range 4096 {
		items = append(items, []byte("999 000 0018"))
	}
	req := AppendList(nil, items...)
	var h Handler
	b.ReportAllocs()
	for b.Loop() {
		h.Handle(OpValidate, req)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*4096), "ns/number")
}

// BenchmarkCheckOnly is the Check calls of BenchmarkHandleValidate alone.
func BenchmarkCheckOnly(b *testing.B) {
	var o ident.Outcome
	s, _ := ident.Lookup("nhs")
	for b.Loop() {
		for range 4096 {
			s.Check("999 000 0018", &o)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*4096), "ns/number")
}

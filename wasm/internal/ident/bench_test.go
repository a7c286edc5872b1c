package ident

import "testing"

func BenchmarkValidateNHS(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NHS{}.Validate("999 000 0018")
	}
}

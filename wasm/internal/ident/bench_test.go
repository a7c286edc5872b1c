package ident

import "testing"

func BenchmarkValidateNHS(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NHS{}.Validate("999 000 0018")
	}
}

func BenchmarkCheckNHS(b *testing.B) {
	b.ReportAllocs()
	var o Outcome
	var s Scheme = NHS{}
	for b.Loop() {
		s.Check("999 000 0018", &o)
	}
}

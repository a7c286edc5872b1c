package dkg

import (
	"fmt"
	"testing"
)

// BenchmarkDKG is one whole honest run, every participant in process (so
// n participants' work: n deals, n² sealed shares opened and checked, n
// key computations): what a DKG costs the federation in CPU, not its
// latency, which the phase round trips dominate.
func BenchmarkDKG(b *testing.B) {
	for _, tc := range []struct{ t, n int }{{2, 3}, {3, 5}} {
		b.Run(fmt.Sprintf("t=%d,n=%d", tc.t, tc.n), func(b *testing.B) {
			cfg := testConfig(tc.t, tc.n)
			for i := 0; b.Loop(); i++ {
				w := newNetwork(b)
				w.start(names(tc.n), freshStarter(cfg, uint64(i+1)))
				w.run()
				if _, err := w.sessions["issuer-1"].Result(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

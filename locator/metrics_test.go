package locator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollector drives a store through every outcome and checks the
// exposition the collector produces, for both stores (the bolt store also
// after a reopen: its counters persist).
func TestCollector(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(testing.TB, Policy) Store) {
		h := testHolder(t, 1, nil)
		now := t0
		s := open(t, DefaultPolicy())
		c := NewCollector(s)

		good := mustPublish(t, h, 1, 2, now.Add(time.Hour))
		other := mustPublish(t, h, 2, 1, now.Add(time.Hour))
		for _, e := range []*Entry{good, other, good, mustPublish(t, h, 1, 1, now.Add(time.Hour)),
			mustPublish(t, h, 3, 1, now.Add(-time.Second))} {
			if _, err := s.Apply(now, e); err != nil && ReasonOf(err) == ReasonNone {
				t.Fatal(err)
			}
		}
		s.NoteRejected(ReasonSealBroken)
		s.NoteRejected(ReasonSealBroken)

		want := map[Reason]int{ReasonStale: 1, ReasonExpired: 1, ReasonSealBroken: 2}
		var b strings.Builder
		b.WriteString("# HELP signpost_locator_accepted_total Writes the replica accepted (new or newer versions).\n# TYPE signpost_locator_accepted_total counter\nsignpost_locator_accepted_total 2\n")
		b.WriteString("# HELP signpost_locator_duplicates_total Writes the replica already held exactly.\n# TYPE signpost_locator_duplicates_total counter\nsignpost_locator_duplicates_total 1\n")
		b.WriteString("# HELP signpost_locator_entries Entries in the replica, tombstones included.\n# TYPE signpost_locator_entries gauge\nsignpost_locator_entries 2\n")
		b.WriteString("# HELP signpost_locator_rejected_total Writes refused and entries that failed to decode or open, by reason.\n# TYPE signpost_locator_rejected_total counter\n")
		for r := ReasonNone + 1; r < NumReasons; r++ {
			fmt.Fprintf(&b, "signpost_locator_rejected_total{reason=%q} %d\n", r.String(), want[r])
		}
		if err := testutil.CollectAndCompare(c, strings.NewReader(b.String())); err != nil {
			t.Fatal(err)
		}
		if n := testutil.CollectAndCount(c, MetricRejected); n != int(NumReasons)-1 {
			t.Fatalf("%d rejection series, want one per reason (%d)", n, NumReasons-1)
		}
	})
}

package locator

import "github.com/prometheus/client_golang/prometheus"

// Metric names of NewCollector (stable: dashboards and alerts use them).
const (
	MetricEntries    = "signpost_locator_entries"
	MetricAccepted   = "signpost_locator_accepted_total"
	MetricDuplicates = "signpost_locator_duplicates_total"
	MetricRejected   = "signpost_locator_rejected_total"
)

var (
	descEntries = prometheus.NewDesc(MetricEntries,
		"Entries in the replica, tombstones included.", nil, nil)
	descAccepted = prometheus.NewDesc(MetricAccepted,
		"Writes the replica accepted (new or newer versions).", nil, nil)
	descDuplicates = prometheus.NewDesc(MetricDuplicates,
		"Writes the replica already held exactly.", nil, nil)
	descRejected = prometheus.NewDesc(MetricRejected,
		"Writes refused and entries that failed to decode or open, by reason.", []string{"reason"}, nil)
)

// NewCollector returns a prometheus.Collector of s's Counters and Len. It
// reads them at each scrape, so it adds no work to writes; a bolt store's
// counters persist, so they survive restarts (as counters should not
// reset). Every reason is exported, zero included, so that a rate over a
// reason that has not happened yet is 0 rather than absent.
func NewCollector(s Store) prometheus.Collector { return storeCollector{s} }

type storeCollector struct{ s Store }

func (storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEntries
	ch <- descAccepted
	ch <- descDuplicates
	ch <- descRejected
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	cs := c.s.Counters()
	ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(c.s.Len()))
	ch <- prometheus.MustNewConstMetric(descAccepted, prometheus.CounterValue, float64(cs.Accepted))
	ch <- prometheus.MustNewConstMetric(descDuplicates, prometheus.CounterValue, float64(cs.Duplicates))
	for r := ReasonNone + 1; r < NumReasons; r++ {
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(cs.Rejected[r]), r.String())
	}
}

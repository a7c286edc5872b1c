package node

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The node's own metrics, registered on Options.Metrics (the registry
// /metrics serves). The assembly registers the federation's, memberlist's
// and the replica's collectors on the same registry; the core knows none of
// them.

// Names of the node's series (stable: dashboards and alerts use them).
const (
	MetricRequests    = "signpost_http_requests_total"
	MetricLatency     = "signpost_http_request_seconds"
	MetricPublished   = "signpost_entries_published_total"
	MetricWithdrawn   = "signpost_entries_withdrawn_total"
	MetricDropped     = "signpost_entries_dropped_total"
	MetricEvaluations = "signpost_issuer_evaluations_total"
	MetricNotices     = "signpost_watch_notices_total"
	MetricWatchers    = "signpost_watchers"
	MetricRecords     = "signpost_records"
	MetricReady       = "signpost_ready"
	MetricRepublish   = "signpost_republish_total"
	MetricOutbox      = "signpost_outbox_items"
	MetricOutboxAge   = "signpost_outbox_oldest_seconds"
	MetricPubAttempts = "signpost_publish_attempts_total"
	MetricPubFailures = "signpost_publish_failures_total"
	MetricQuotaAlerts = "signpost_quota_alerts_total"
	MetricQuotaRefuse = "signpost_quota_refused_total"
	// Contact requests (contact.go): held, by side and state; and holder
	// decisions not yet delivered to the requester.
	MetricContacts    = "signpost_contact_requests"
	MetricUndelivered = "signpost_contact_answers_undelivered"
	MetricPartials    = "signpost_issuer_partials_total"
	// MetricRotation is a key rotation's progress (rotation.go).
	MetricRotation = "signpost_rotation_pending"
)

// Outcomes of asking one issuer for a partial evaluation.
const (
	partialOK       = "ok"
	partialBadProof = "bad_proof" // answered, but the proof failed: rejected and audited
	partialFailed   = "failed"    // refused, unreachable, timed out or malformed
)

// Outcomes of issuer evaluations, as in the audit trail.
const (
	outcomeOK     = "ok"
	outcomeDenied = "denied"
	outcomeError  = "error"
)

// purposeOther labels evaluations refused for a purpose the requester is
// not authorised for: the name is the requester's choice, and a label must
// not take unbounded values.
const purposeOther = "unauthorised"

var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type metrics struct {
	handler http.Handler // serves the registry

	requests    *prometheus.CounterVec   // route, status
	latency     *prometheus.HistogramVec // route
	evaluations *prometheus.CounterVec   // purpose, outcome
	partials    *prometheus.CounterVec   // issuer, outcome
	republish   *prometheus.CounterVec   // result
	// publishAttempts and publishFailures count the outbox's batches
	// (a write's own or the background publisher's) and those that failed.
	publishAttempts prometheus.Counter
	publishFailures prometheus.Counter
	quotaAlerts     *prometheus.CounterVec // kind: person, system
	quotaRefused    *prometheus.CounterVec // kind
	published       prometheus.Counter
	withdrawn       prometheus.Counter
	dropped         prometheus.Counter
	notices         prometheus.Counter
}

// newMetrics registers the node's metrics on reg. The gauges read n at
// scrape time.
func newMetrics(reg *prometheus.Registry, n *Node) (*metrics, error) {
	m := &metrics{
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests,
			Help: "HTTP requests by route and status."}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricLatency,
			Help: "HTTP request latency by route.", Buckets: latencyBuckets}, []string{"route"}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEvaluations,
			Help: "Blinded elements this node was asked to evaluate as issuer, by purpose and outcome (ok, denied, error)."},
			[]string{"purpose", "outcome"}),
		partials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricPartials,
			Help: "Partial evaluations this node asked the token issuers for, by issuer node and outcome (ok, bad_proof, failed)."},
			[]string{"issuer", "outcome"}),
		republish: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRepublish,
			Help: "Start-up reconciliations (queueing what is missing, changed or due; a new epoch's pass counts when done), by result (ok, failed)."}, []string{"result"}),
		publishAttempts: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPubAttempts,
			Help: "Batches of outbox items the node tried to publish (a write's own, or the background publisher's)."}),
		publishFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPubFailures,
			Help: "Batches of outbox items that failed to publish (the issuer could not be reached, or the index failed); they stay queued."}),
		quotaAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricQuotaAlerts,
			Help: "Users who passed quota_alert_share of their daily lookup quota (once per user and day), by kind (person, system); the audit log names them."}, []string{"kind"}),
		quotaRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricQuotaRefuse,
			Help: "Lookups refused because the user's daily quota was spent, by kind (person, system)."}, []string{"kind"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPublished,
			Help: "Entries this node published."}),
		withdrawn: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricWithdrawn,
			Help: "Entries this node withdrew."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricDropped,
			Help: "Entries that failed to open or verify and were dropped."}),
		notices: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricNotices,
			Help: "Notices sent to watchers."}),
	}
	m.republish.WithLabelValues("ok")
	m.republish.WithLabelValues("failed")
	for _, k := range []string{quotaPerson, quotaSystem} {
		m.quotaAlerts.WithLabelValues(k)
		m.quotaRefused.WithLabelValues(k)
	}
	cs := []prometheus.Collector{m.requests, m.latency, m.evaluations, m.partials, m.republish, m.publishAttempts, m.publishFailures, m.quotaAlerts, m.quotaRefused,
		m.published, m.withdrawn, m.dropped, m.notices, nodeGauges{n}, contactGauges{n}, rotationGauges{n}}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// evaluated counts n blinded elements for purpose (as the label allows,
// see purposeOther).
func (m *metrics) evaluated(purpose string, authorised []string, outcome string, n int) {
	if !slices.Contains(authorised, purpose) {
		purpose = purposeOther
	}
	m.evaluations.WithLabelValues(purpose, outcome).Add(float64(n))
}

// partial counts one issuer's answer. The issuer label takes only the node
// ids of the key records' issuers, a handful.
func (m *metrics) partial(issuer, outcome string) {
	m.partials.WithLabelValues(issuer, outcome).Inc()
}

var (
	descWatchers = prometheus.NewDesc(MetricWatchers, "Open WebSocket watch connections.", nil, nil)
	descRecords  = prometheus.NewDesc(MetricRecords, "Records this agency holds (objected included).", nil, nil)
	descReady    = prometheus.NewDesc(MetricReady, "1 once the node has started (/readyz), else 0.", nil, nil)
	descOutbox   = prometheus.NewDesc(MetricOutbox, "Record changes waiting in the outbox to be published or withdrawn.", nil, nil)
	descOutAge   = prometheus.NewDesc(MetricOutboxAge, "Age of the oldest item in the outbox (0 when empty).", nil, nil)
)

// nodeGauges reads the node's gauges at scrape time.
type nodeGauges struct{ n *Node }

func (nodeGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWatchers
	ch <- descRecords
	ch <- descReady
	ch <- descOutbox
	ch <- descOutAge
}

func (g nodeGauges) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descWatchers, prometheus.GaugeValue, float64(g.n.hub.count()))
	if c, err := g.n.records.Count(); err == nil {
		ch <- prometheus.MustNewConstMetric(descRecords, prometheus.GaugeValue, float64(c))
	}
	ready := 0.0
	if g.n.ready.Load() {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready)
	length, oldest := g.n.outboxStatus()
	ch <- prometheus.MustNewConstMetric(descOutbox, prometheus.GaugeValue, float64(length))
	ch <- prometheus.MustNewConstMetric(descOutAge, prometheus.GaugeValue, oldest.Seconds())
}

func (n *Node) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	n.metrics.handler.ServeHTTP(w, r)
	return nil
}

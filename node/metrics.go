package node

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// metrics is a tiny Prometheus text-format exporter: request counts by
// route and status, request latency histograms by route, and node gauges.
// (No client library: a dozen series do not justify the dependency.)
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64
	hist     map[string]*histogram

	published   atomic.Int64
	withdrawn   atomic.Int64
	evaluations atomic.Int64
	dropped     atomic.Int64
	notices     atomic.Int64
}

var buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type histogram struct {
	counts []uint64
	sum    float64
	n      uint64
}

func newMetrics() *metrics {
	return &metrics{requests: make(map[[2]string]uint64), hist: make(map[string]*histogram)}
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	s := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[2]string{route, fmt.Sprint(status)}]++
	h := m.hist[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(buckets))}
		m.hist[route] = h
	}
	for i, b := range buckets {
		if s <= b {
			h.counts[i]++
		}
	}
	h.sum += s
	h.n++
}

func (n *Node) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	m := n.metrics
	var b strings.Builder
	b.WriteString("# HELP signpost_http_requests_total HTTP requests by route and status.\n# TYPE signpost_http_requests_total counter\n")
	m.mu.Lock()
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(&b, "signpost_http_requests_total{route=%q,status=%q} %d\n", k[0], k[1], m.requests[k])
	}
	b.WriteString("# HELP signpost_http_request_seconds HTTP request latency by route.\n# TYPE signpost_http_request_seconds histogram\n")
	routes := make([]string, 0, len(m.hist))
	for r := range m.hist {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	for _, rt := range routes {
		h := m.hist[rt]
		for i, bk := range buckets {
			fmt.Fprintf(&b, "signpost_http_request_seconds_bucket{route=%q,le=\"%g\"} %d\n", rt, bk, h.counts[i])
		}
		fmt.Fprintf(&b, "signpost_http_request_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", rt, h.n)
		fmt.Fprintf(&b, "signpost_http_request_seconds_sum{route=%q} %g\nsignpost_http_request_seconds_count{route=%q} %d\n", rt, h.sum, rt, h.n)
	}
	m.mu.Unlock()
	for _, c := range []struct {
		name, help string
		v          int64
	}{
		{"signpost_entries_published_total", "Entries this node published.", m.published.Load()},
		{"signpost_entries_withdrawn_total", "Entries this node withdrew.", m.withdrawn.Load()},
		{"signpost_issuer_evaluations_total", "Blinded elements this node evaluated as issuer.", m.evaluations.Load()},
		{"signpost_entries_dropped_total", "Entries that failed to open or verify and were dropped.", m.dropped.Load()},
		{"signpost_watch_notices_total", "Notices sent to watchers.", m.notices.Load()},
	} {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", c.name, c.help, c.name, c.name, c.v)
	}
	if c, err := n.records.Count(); err == nil {
		fmt.Fprintf(&b, "# HELP signpost_records Records this agency holds (objected included).\n# TYPE signpost_records gauge\nsignpost_records %d\n", c)
	}
	fmt.Fprintf(&b, "# HELP signpost_replica_entries Entries in the local replica (tombstones included).\n# TYPE signpost_replica_entries gauge\nsignpost_replica_entries %d\n", n.opt.Index.Len())
	fmt.Fprintf(&b, "# HELP signpost_watchers Open WebSocket watch connections.\n# TYPE signpost_watchers gauge\nsignpost_watchers %d\n", n.hub.count())
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, err := w.Write([]byte(b.String()))
	return err
}

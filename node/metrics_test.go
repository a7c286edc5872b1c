package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetrics checks what /metrics serves: the registry the node was
// given (with what the assembly registered on it), requests by route and
// status, issuer evaluations by purpose and outcome, and the gauges.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	assembly := prometheus.NewCounter(prometheus.CounterOpts{Name: "signpost_test_assembly_total", Help: "Registered by the assembly."})
	assembly.Add(3)
	reg.MustRegister(assembly)
	a := newTestNodeWith(t, newFakeFed(), "a", nil, func(o *Options) { o.Metrics = reg })
	ctx := context.Background()
	blinded := func(n int) [][]byte { return make([][]byte, n) }

	if r := a.do(t, "POST", "/v1/tokens/evaluate", "prac-token", `{"purpose":"safeguarding","blinded":["AAEC","AAED"]}`); r.status != 200 {
		t.Fatalf("evaluate: %d %s", r.status, r.body)
	}
	// A peer authorised for direct-care only, asking for safeguarding and
	// for a name of its own choosing: both denied, under one label.
	for _, p := range []string{"safeguarding", "made-up-purpose"} {
		if _, _, err := a.issuerEvaluate(ctx, "b", []string{"direct-care"}, p, 1, blinded(3), true); err == nil {
			t.Fatalf("%s: evaluated for an unauthorised purpose", p)
		}
	}
	failing := soloKeyring("f")
	failing.fail = errors.New("evaluation failed")
	f := newTestNodeWith(t, newFakeFed(), "f", nil, func(o *Options) { o.Keyring = failing })
	if _, _, err := f.issuerEvaluate(ctx, "b", []string{"direct-care"}, "direct-care", 1, blinded(1), true); err == nil {
		t.Fatal("a failing evaluation succeeded")
	}
	a.do(t, "POST", "/v1/locate", "", "{}")

	r := a.do(t, "GET", "/metrics", "", "")
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	for _, line := range []string{
		`signpost_test_assembly_total 3`,
		`signpost_http_requests_total{route="tokens.evaluate",status="200"} 1`,
		`signpost_http_requests_total{route="locate",status="401"} 1`,
		`signpost_http_request_seconds_count{route="locate"} 1`,
		`signpost_issuer_evaluations_total{outcome="ok",purpose="safeguarding"} 2`,
		`signpost_issuer_evaluations_total{outcome="denied",purpose="unauthorised"} 6`,
		`signpost_republish_total{result="ok"} 1`,
		`signpost_republish_total{result="failed"} 0`,
		`signpost_ready 1`,
		`signpost_records 0`,
		`signpost_watchers 0`,
	} {
		if !strings.Contains(r.body, "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(r.body, `outcome="error"`) {
		t.Error("another node's failed evaluation shows in this node's metrics")
	}
	if r := f.do(t, "GET", "/metrics", "", ""); !strings.Contains(r.body, `signpost_issuer_evaluations_total{outcome="error",purpose="direct-care"} 1`) {
		t.Errorf("failed evaluation not counted:\n%s", r.body)
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", r.body)
	}
}

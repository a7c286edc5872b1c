package sim

import (
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestRealNodesAgree runs real federation agents on loopback and the
// simulation of the same workload, and compares them. It takes about a
// minute and binds many loopback ports, so it runs only when
// SIGNPOST_REALNODES is set (to the node count, or 1 for 30 nodes).
func TestRealNodesAgree(t *testing.T) {
	v := os.Getenv("SIGNPOST_REALNODES")
	if v == "" || testing.Short() {
		t.Skip("set SIGNPOST_REALNODES=<nodes> to run real agents on loopback")
	}
	nodes, err := strconv.Atoi(v)
	if err != nil || nodes < 2 {
		nodes = 30
	}
	sc, err := Builtin("steady")
	if err != nil {
		t.Fatal(err)
	}
	sc.Shorten(40 * time.Second)
	sc.Publish.Stop = Duration(20 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := CompareReal(ctx, sc, nodes, 0.35, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nodes %d: all-nodes mean sim %.0f ms real %.0f ms (ratio %.2f)", nodes, c.Sim.AllNodes.Mean, c.Real.AllNodes.Mean, c.RatioMean)
	t.Logf("nodes %d: all-nodes p50 sim %.0f ms real %.0f ms (ratio %.2f), p90 %.0f / %.0f (%.2f); replica p50 %.0f / %.0f; push B/node/entry ratio %.2f; AE B/node/s ratio %.2f; real never %d, startup %.1fs",
		nodes, c.Sim.AllNodes.P50, c.Real.AllNodes.P50, c.RatioP50, c.Sim.AllNodes.P90, c.Real.AllNodes.P90, c.RatioP90,
		c.Sim.Replica.P50, c.Real.Replica.P50, c.RatioPushPerEntry, c.RatioAEPerSec, c.Real.NeverDelivered, c.Real.StartupSeconds)
	// Every agent, watch and connection goroutine is gone.
	testutil.VerifyNone(t)
	if c.Real.NeverDelivered != 0 {
		t.Errorf("%d entries never reached every real node", c.Real.NeverDelivered)
	}
	if !c.Agree {
		t.Errorf("sim and real all-nodes p50/p90 differ beyond ±%.0f%%: ratios %.2f, %.2f", c.Tolerance*100, c.RatioP50, c.RatioP90)
	}
}

// TestCalibrate: the compared simulation's latency takes the real first
// hop's median, the σ that gives its p90 and its maximum, and is left alone
// when the real run measured no first hop.
func TestCalibrate(t *testing.T) {
	sc, err := Builtin("steady")
	if err != nil {
		t.Fatal(err)
	}
	c := realScenario(sc, 20)
	l := c.Network.Latency
	hop := Percentiles{Count: 40, P50: 2, P90: 56, Max: 900}
	cal, how := calibrate(c, hop)
	got := cal.Network.Latency
	if got.Median.D() != 2*time.Millisecond || got.Max.D() != 900*time.Millisecond || got.Min != l.Min {
		t.Errorf("calibrated latency %+v: want median 2ms, max 900ms, min %v", got, l.Min.D())
	}
	// The calibrated lognormal's p90 is the measured one.
	if p90 := float64(got.Median) * math.Exp(got.Sigma*1.2815515655446004) / 1e6; math.Abs(p90-hop.P90) > 0.1 {
		t.Errorf("calibrated σ %v gives p90 %.2f ms, want %.0f", got.Sigma, p90, hop.P90)
	}
	if c.Network.Latency != l {
		t.Errorf("calibrate changed its argument: %+v", c.Network.Latency)
	}
	if err := cal.Validate(); err != nil {
		t.Errorf("calibrated scenario invalid: %v", err)
	}
	if !strings.Contains(how, "p50 2.0 ms, p90 56.0 ms") || !strings.Contains(how, "first hop") {
		t.Errorf("calibration note %q does not give the measured figures and their source", how)
	}
	// A p90 no higher than the p50 keeps the loopback σ.
	if flat, _ := calibrate(c, Percentiles{Count: 3, P50: 4, P90: 4, Max: 4}); flat.Network.Latency.Sigma != l.Sigma {
		t.Errorf("flat first hop: σ %v, want the loopback %v", flat.Network.Latency.Sigma, l.Sigma)
	}
	same, how := calibrate(c, Percentiles{})
	if same != c || !strings.HasPrefix(how, "none") {
		t.Errorf("with no first-hop figure: scenario changed %v, note %q", same != c, how)
	}
}

package sim

import (
	"context"
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

// TestCalibrate: the compared simulation's latency takes the real first-hop
// median, keeps the loopback distribution's shape, and is left alone when
// the real run measured no first hop.
func TestCalibrate(t *testing.T) {
	sc, err := Builtin("steady")
	if err != nil {
		t.Fatal(err)
	}
	c := realScenario(sc, 20)
	l := c.Network.Latency
	cal, how := calibrate(c, Percentiles{Count: 40, P50: 6, P90: 15})
	got := cal.Network.Latency
	if got.Median.D() != 6*time.Millisecond {
		t.Errorf("calibrated median %v, want the first-hop p50 6ms", got.Median.D())
	}
	k := float64(got.Median) / float64(l.Median)
	if got.Dist != l.Dist || got.Sigma != l.Sigma || got.Min != Duration(float64(l.Min)*k) || got.Max != Duration(float64(l.Max)*k) {
		t.Errorf("calibrated latency %+v is not the loopback one %+v scaled ×%.1f", got, l, k)
	}
	if c.Network.Latency != l {
		t.Errorf("calibrate changed its argument: %+v", c.Network.Latency)
	}
	if err := cal.Validate(); err != nil {
		t.Errorf("calibrated scenario invalid: %v", err)
	}
	if !strings.Contains(how, "6ms") || !strings.Contains(how, "first-hop p50") {
		t.Errorf("calibration note %q does not give the measured figure and its source", how)
	}
	same, how := calibrate(c, Percentiles{})
	if same != c || !strings.HasPrefix(how, "none") {
		t.Errorf("with no first-hop figure: scenario changed %v, note %q", same != c, how)
	}
}

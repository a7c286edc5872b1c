package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

// withPool returns a copy of s whose nodes share cpus processors, each
// received message costing service.
func withPool(s *Scenario, cpus int, service time.Duration) *Scenario {
	c := *s
	c.Network.SharedCPUs = cpus
	c.Network.ServiceTime = Duration(service)
	return &c
}

// TestSharedCPUZeroCostIsNoPool: a pool whose messages cost nothing gives
// the report of no pool, byte for byte (apart from the pool's own field
// and the scenario echoed), so the queue's event path changes nothing by
// itself.
func TestSharedCPUZeroCostIsNoPool(t *testing.T) {
	s := small(t, "steady", 40)
	none, _ := runNoWall(t, s)
	zero, _ := runNoWall(t, withPool(s, 2, 0))
	if none.CPU != nil {
		t.Errorf("a scenario without shared CPUs reports a pool: %+v", none.CPU)
	}
	if zero.CPU == nil || zero.CPU.Jobs == 0 || zero.CPU.Utilisation != 0 || zero.CPU.MaxWaitMs != 0 {
		t.Fatalf("zero-cost pool report %+v: want jobs, no utilisation, no wait", zero.CPU)
	}
	enc := func(r *Report) []byte {
		c := *r
		c.Scenario, c.CPU = nil, nil
		var b bytes.Buffer
		if err := c.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	if a, b := enc(none), enc(zero); !bytes.Equal(a, b) {
		t.Errorf("zero service time changed the report:\n%s\nvs\n%s", a, b)
	}
}

// TestSharedCPUQueues: with a service time every received message is a
// job on the pool (as many jobs as messages the network delivered), the
// pool's busy share is jobs × service over its time, and fewer processors
// or a longer service time make entries slower to reach every node.
func TestSharedCPUQueues(t *testing.T) {
	s := small(t, "steady", 40)
	const service = 100 * time.Microsecond
	none, _ := runNoWall(t, s)
	p50 := map[int]float64{}
	for _, cpus := range []int{1, 2} {
		sc := withPool(s, cpus, service)
		sim, err := newSimulation(sc)
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.loop(context.Background()); err != nil {
			t.Fatal(err)
		}
		var received uint64
		for i := range sim.nodes {
			for k := range numClasses {
				_, m := sim.net.Received(i, k)
				received += m
			}
		}
		r := sim.report("")
		p := r.CPU
		if p == nil || p.CPUs != cpus || p.ServiceTimeMs != 0.1 {
			t.Fatalf("%d CPUs: pool report %+v", cpus, p)
		}
		if p.Jobs != received {
			t.Errorf("%d CPUs: %d jobs for %d messages received", cpus, p.Jobs, received)
		}
		want := float64(p.Jobs) * service.Seconds() / (float64(cpus) * r.VirtualSecs)
		if math.Abs(p.Utilisation-want) > 0.0006 {
			t.Errorf("%d CPUs: utilisation %v, want %v", cpus, p.Utilisation, want)
		}
		if p.MeanWaitMs <= 0 || p.MaxWaitMs < p.MeanWaitMs {
			t.Errorf("%d CPUs: waits mean %v max %v", cpus, p.MeanWaitMs, p.MaxWaitMs)
		}
		if r.Visibility.NeverDelivered != 0 {
			t.Errorf("%d CPUs: %d entries never delivered", cpus, r.Visibility.NeverDelivered)
		}
		p50[cpus] = r.Visibility.AllNodes.P50
	}
	t.Logf("all-nodes p50: no pool %.1f ms, 2 CPUs %.1f ms, 1 CPU %.1f ms", none.Visibility.AllNodes.P50, p50[2], p50[1])
	if !(none.Visibility.AllNodes.P50 < p50[2] && p50[2] < p50[1]) {
		t.Errorf("all-nodes p50: no pool %.1f, 2 CPUs %.1f, 1 CPU %.1f: want increasing", none.Visibility.AllNodes.P50, p50[2], p50[1])
	}
}

// TestSharedCPUValidate: a service time needs processors; processors
// without a service time are allowed (they cost nothing).
func TestSharedCPUValidate(t *testing.T) {
	s := small(t, "steady", 10)
	for _, tt := range []struct {
		cpus    int
		service time.Duration
		bad     string
	}{
		{0, time.Millisecond, "network.service_time"},
		{-1, 0, "network.shared_cpus"},
		{2000, 0, "network.shared_cpus"},
		{2, -time.Millisecond, "network.service_time"},
		{2, 0, ""},
		{4, time.Millisecond, ""},
	} {
		err := withPool(s, tt.cpus, tt.service).Validate()
		if tt.bad == "" && err != nil {
			t.Errorf("cpus %d service %v: %v", tt.cpus, tt.service, err)
		}
		if tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad)) {
			t.Errorf("cpus %d service %v: error %v, want one naming %s", tt.cpus, tt.service, err, tt.bad)
		}
	}
}

// TestCPUPerMessage: the window's CPU less the background rate over it,
// per message.
func TestCPUPerMessage(t *testing.T) {
	for _, tt := range []struct {
		cpu        time.Duration
		background float64
		window     time.Duration
		msgs       uint64
		want       float64
	}{
		{10 * time.Second, 0.3, 20 * time.Second, 40000, 0.1},
		{10 * time.Second, 0, 20 * time.Second, 40000, 0.25},
		{10 * time.Second, 0.3, 20 * time.Second, 0, 0},
		{time.Second, 0.5, 20 * time.Second, 100, 0}, // background above the window's CPU
	} {
		if got := cpuPerMessage(tt.cpu, tt.background, tt.window, tt.msgs); got != tt.want {
			t.Errorf("cpuPerMessage(%v, %v, %v, %d) = %v, want %v", tt.cpu, tt.background, tt.window, tt.msgs, got, tt.want)
		}
	}
}

// TestCalibrateQueue: the judged model's pool has the real run's
// GOMAXPROCS processors and a service time of the CPU per message
// stretched by the processors over those the background and other
// processes left; with no CPU figures the scenario is returned as is.
func TestCalibrateQueue(t *testing.T) {
	sc, err := Builtin("steady")
	if err != nil {
		t.Fatal(err)
	}
	c := realScenario(sc, 20)
	base := RealResult{GOMAXPROCS: 2, CPUSeconds: 10, WindowSeconds: 20, Messages: 40000, IdleSeconds: 3, BackgroundCPUs: 0.3, CPUPerMessageMs: 0.1}
	for _, tt := range []struct {
		name    string
		other   float64
		bg      float64
		service time.Duration
		avail   float64
	}{
		{"background and others", 0.2, 0.3, 133333 * time.Nanosecond, 1.5},
		{"others unknown", -1, 0.3, 117647 * time.Nanosecond, 1.7},
		{"idle machine", 0, 0, 100 * time.Microsecond, 2},
		{"saturated: floor", 1.0, 1.5, time.Millisecond, 0.2},
	} {
		real := base
		real.OtherCPUs, real.BackgroundCPUs = tt.other, tt.bg
		q, how := calibrateQueue(c, &real)
		if q == c || c.Network.SharedCPUs != 0 || c.Network.ServiceTime != 0 {
			t.Fatalf("%s: calibrateQueue changed its argument or returned it", tt.name)
		}
		if q.Network.SharedCPUs != 2 || q.Network.ServiceTime.D() != tt.service || q.Network.Latency != c.Network.Latency {
			t.Errorf("%s: pool %d × %v, latency %+v: want 2 × %v, loopback latency", tt.name, q.Network.SharedCPUs, q.Network.ServiceTime.D(), q.Network.Latency, tt.service)
		}
		if got := queueAvailable(&real); got != tt.avail {
			t.Errorf("%s: available %v, want %v", tt.name, got, tt.avail)
		}
		if err := q.Validate(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		for _, w := range []string{"shared-CPU queue", "0.100 ms per message", "40000 messages", "first come first served"} {
			if !strings.Contains(how, w) {
				t.Errorf("%s: description %q lacks %q", tt.name, how, w)
			}
		}
	}
	for _, real := range []RealResult{{}, {GOMAXPROCS: 2}, {GOMAXPROCS: 2, Messages: 10}} {
		if q, how := calibrateQueue(c, &real); q != c || !strings.HasPrefix(how, "none") {
			t.Errorf("no CPU figures %+v: scenario changed %v, description %q", real, q != c, how)
		}
	}
}

// TestParseProcStat: the busy and stolen ticks of the aggregate cpu line,
// idle and iowait left out; anything else is unknown.
func TestParseProcStat(t *testing.T) {
	for _, tt := range []struct {
		stat string
		want time.Duration
		ok   bool
	}{
		{"cpu  100 5 50 9000 20 3 2 7 0 0\ncpu0 50 2 25 4500 10 1 1 3 0 0\n", (100 + 5 + 50 + 3 + 2 + 7) * 10 * time.Millisecond, true},
		{"cpu 1 0 0 0 0 0 0 0\n", 10 * time.Millisecond, true},
		{"cpu0 1 2 3 4 5 6 7 8\n", 0, false},
		{"cpu 1 2 3 4 5 6 7\n", 0, false},
		{"cpu 1 2 x 4 5 6 7 8\n", 0, false},
		{"cpu 18446744073709551615 1 0 0 0 0 0 0\n", 0, false},
		{"", 0, false},
	} {
		got, ok := parseProcStat(tt.stat)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseProcStat(%q) = %v, %v; want %v, %v", tt.stat, got, ok, tt.want, tt.ok)
		}
	}
}

// TestComparisonFields: the comparison names its judged model, the pool
// and the reference models in its JSON and its summary; a report gives its
// pool only when it has one.
func TestComparisonFields(t *testing.T) {
	c := &Comparison{Scenario: "steady-loopback", Nodes: 50, Tolerance: 0.35,
		Real:  &RealResult{Nodes: 50, Published: 100, GOMAXPROCS: 2, AllNodes: Percentiles{P50: 40, P90: 120}},
		Sim:   RealResult{Nodes: 50, Published: 100, AllNodes: Percentiles{P50: 44, P90: 100}},
		Model: "shared-CPU queue: test", QueueCPUs: 2, QueueServiceMs: 0.25, QueueAvailableCPUs: 1.6,
		SimCPU:          &CPUReport{CPUs: 2, ServiceTimeMs: 0.25, Jobs: 1000, Utilisation: 0.3, MeanWaitMs: 0.1, MaxWaitMs: 4},
		RealUtilisation: 0.35, FirstHopP50: 90, FirstHopP90: 300, RatioP50: 1.1, RatioP90: 0.83}
	c.judge()
	if !c.Agree {
		t.Errorf("ratios 1.1 and 0.83 within ±35%% judged %v", c.Agree)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"model": "shared-CPU queue: test", "queue_cpus": 2.0, "queue_service_time_ms": 0.25,
		"queue_available_cpus": 1.6, "real_cpu_utilisation": 0.35, "first_hop_model_all_nodes_p50_ms": 90.0} {
		if m[k] != want {
			t.Errorf("JSON %s = %v, want %v", k, m[k], want)
		}
	}
	if p, ok := m["sim_cpu_pool"].(map[string]any); !ok || p["utilisation"] != 0.3 || p["max_wait_ms"] != 4.0 {
		t.Errorf("JSON sim_cpu_pool = %v", m["sim_cpu_pool"])
	}
	var sum strings.Builder
	c.Summary(&sum)
	for _, w := range []string{"judged model: shared-CPU queue: test", "utilisation 0.300 (real 0.350)", "max wait 4.0 ms", "p50 90 ms, p90 300 ms"} {
		if !strings.Contains(sum.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, sum.String())
		}
	}

	s := small(t, "steady", 10)
	s.Shorten(10 * time.Second)
	for _, sc := range []*Scenario{s, withPool(s, 2, 50*time.Microsecond)} {
		r, b := runNoWall(t, sc)
		var sum strings.Builder
		r.Summary(&sum)
		has := sc.Network.SharedCPUs > 0
		if bytes.Contains(b, []byte(`"cpu_pool"`)) != has || strings.Contains(sum.String(), "shared CPU pool") != has {
			t.Errorf("shared CPUs %d: report JSON or summary %s the pool", sc.Network.SharedCPUs, map[bool]string{true: "lacks", false: "has"}[has])
		}
	}
}

// TestGCDelta: cycles and pause total between two snapshots, and the
// longest pause among the cycles between them only.
func TestGCDelta(t *testing.T) {
	var a, b runtime.MemStats
	a.NumGC, a.PauseTotalNs = 300, 1e9
	b.NumGC, b.PauseTotalNs = 303, 1e9+8e6
	b.PauseNs[299%256] = 99e6 // before the window
	b.PauseNs[300%256], b.PauseNs[301%256], b.PauseNs[302%256] = 1e6, 5e6, 2e6
	n, total, longest := gcDelta(&a, &b)
	if n != 3 || total != 8*time.Millisecond || longest != 5*time.Millisecond {
		t.Errorf("gcDelta = %d, %v, %v; want 3, 8ms, 5ms", n, total, longest)
	}
	a.NumGC = 0 // more cycles than the runtime keeps: the longest kept
	if n, _, longest := gcDelta(&a, &b); n != 303 || longest != 99*time.Millisecond {
		t.Errorf("gcDelta over 303 cycles = %d, longest %v; want 303, 99ms", n, longest)
	}
}

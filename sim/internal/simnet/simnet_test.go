package simnet

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func fixed(d time.Duration) Latency { return Latency{Dist: DistFixed, Median: d} }

func newNet(t *testing.T, cfg Config) *Network {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestQueueOrdersByTimeThenInsertion(t *testing.T) {
	var q Queue
	q.Push(Event{At: 30, Node: 1})
	q.Push(Event{At: 10, Node: 2})
	q.Push(Event{At: 30, Node: 3})
	q.Push(Event{At: 10, Node: 4})
	q.Push(Event{At: 20, Node: 5})
	var got []int32
	for {
		e, ok := q.Pop()
		if !ok {
			break
		}
		if e.At < q.Now() || q.Now() != e.At {
			t.Fatalf("clock %d for event at %d", q.Now(), e.At)
		}
		got = append(got, e.Node)
	}
	want := []int32{2, 4, 5, 1, 3}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestQueuePastEventRunsNow(t *testing.T) {
	var q Queue
	q.Push(Event{At: 100})
	q.Pop()
	q.Push(Event{At: 50})
	e, _ := q.Pop()
	if e.At != 100 {
		t.Fatalf("past event ran at %d, want 100", e.At)
	}
}

func TestQueueHeapProperty(t *testing.T) {
	const seed = 7
	r := rand.New(rand.NewPCG(seed, 0))
	var q Queue
	for range 5000 {
		q.Push(Event{At: r.Int64N(1000)})
		if r.IntN(3) == 0 {
			q.Pop()
		}
	}
	last := int64(-1)
	for q.Len() > 0 {
		e, _ := q.Pop()
		if e.At < last {
			t.Fatalf("seed %d: popped %d after %d", seed, e.At, last)
		}
		last = e.At
	}
}

func TestLossWithinBinomialBounds(t *testing.T) {
	for _, p := range []float64{0, 0.01, 0.1, 0.5} {
		const seed, trials = 42, 100000
		n := newNet(t, Config{Nodes: 2, Local: Link{Latency: fixed(time.Millisecond), Loss: p}, Seed: seed})
		lost := 0
		for i := range trials {
			if _, ok := n.Send(int64(i), 0, 1, 0, 100); !ok {
				lost++
			}
		}
		mean := p * trials
		sd := math.Sqrt(trials * p * (1 - p))
		if math.Abs(float64(lost)-mean) > 5*sd+0.5 {
			t.Errorf("seed %d loss %v: %d lost of %d, want %.0f ± %.0f", seed, p, lost, trials, mean, 5*sd)
		}
		if int(n.Dropped[DropLoss]) != lost {
			t.Errorf("loss %v: counted %d, saw %d", p, n.Dropped[DropLoss], lost)
		}
		// A lost message still left the sender.
		if b, m := n.Sent(0, 0); m != trials || b != trials*100 {
			t.Errorf("loss %v: sent %d msgs %d bytes", p, m, b)
		}
	}
}

func TestLatencyHonoured(t *testing.T) {
	tests := []struct {
		name     string
		lat      Latency
		min, max time.Duration
		median   time.Duration // 0: not checked
	}{
		{"fixed", fixed(20 * time.Millisecond), 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
		{"uniform", Latency{Dist: DistUniform, Min: 10 * time.Millisecond, Max: 30 * time.Millisecond}, 10 * time.Millisecond, 30 * time.Millisecond, 20 * time.Millisecond},
		{"lognormal", Latency{Dist: DistLogNormal, Median: 50 * time.Millisecond, Sigma: 0.5, Min: 5 * time.Millisecond, Max: 400 * time.Millisecond}, 5 * time.Millisecond, 400 * time.Millisecond, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNet(t, Config{Nodes: 2, Local: Link{Latency: tt.lat}, Seed: 1})
			var below int
			const trials = 20000
			for i := range trials {
				now := int64(i) * int64(time.Second)
				at, ok := n.Send(now, 0, 1, 0, 10)
				if !ok {
					t.Fatal("dropped without loss")
				}
				d := time.Duration(at - now)
				if d < tt.min || d > tt.max {
					t.Fatalf("latency %v outside [%v, %v]", d, tt.min, tt.max)
				}
				if d < tt.median {
					below++
				}
			}
			if tt.name != "fixed" {
				if f := float64(below) / trials; math.Abs(f-0.5) > 0.02 {
					t.Errorf("%.3f of samples below the median %v", f, tt.median)
				}
			}
		})
	}
}

func TestWideLinksBetweenRegions(t *testing.T) {
	n := newNet(t, Config{Nodes: 3, Region: []uint16{0, 0, 1},
		Local: Link{Latency: fixed(time.Millisecond)}, Wide: Link{Latency: fixed(80 * time.Millisecond)}})
	if at, _ := n.Send(0, 0, 1, 0, 1); at != int64(time.Millisecond) {
		t.Errorf("local arrival %v", time.Duration(at))
	}
	if at, _ := n.Send(0, 0, 2, 0, 1); at != int64(80*time.Millisecond) {
		t.Errorf("wide arrival %v", time.Duration(at))
	}
}

func TestPartitionBlocksExactlyInsideWindow(t *testing.T) {
	n := newNet(t, Config{Nodes: 4, Local: Link{Latency: fixed(0)}})
	if err := n.AddPartition(Partition{From: 100, Until: 200, Side: []uint8{0, 0, 1, 1}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		t       int64
		a, b    int
		blocked bool
	}{
		{99, 0, 2, false},
		{100, 0, 2, true},
		{150, 3, 1, true},
		{150, 0, 1, false}, // same side
		{150, 2, 3, false},
		{199, 1, 3, true},
		{200, 0, 2, false}, // Until is exclusive
	}
	for _, tt := range tests {
		if got := n.Blocked(tt.t, tt.a, tt.b); got != tt.blocked {
			t.Errorf("t=%d %d→%d blocked=%v, want %v", tt.t, tt.a, tt.b, got, tt.blocked)
		}
		_, ok := n.Send(tt.t, tt.a, tt.b, 0, 1)
		if ok == tt.blocked {
			t.Errorf("t=%d %d→%d delivered=%v", tt.t, tt.a, tt.b, ok)
		}
	}
	// A message sent before the window but arriving inside it is lost.
	if !n.Deliver(99, 0, 2, 0, 1, true) || n.Deliver(100, 0, 2, 0, 1, true) {
		t.Error("Deliver does not honour the window at arrival")
	}
	if n.Deliver(50, 0, 1, 0, 1, false) {
		t.Error("delivered to a down node")
	}
	if err := n.AddPartition(Partition{From: 5, Until: 5, Side: make([]uint8, 4)}); err == nil {
		t.Error("empty window accepted")
	}
	if err := n.AddPartition(Partition{From: 5, Until: 6, Side: make([]uint8, 3)}); err == nil {
		t.Error("short side accepted")
	}
}

func TestBandwidthSerialisesAndQueues(t *testing.T) {
	// 1000 B/s: a 100-byte message takes 100 ms on each link.
	n := newNet(t, Config{Nodes: 3, Local: Link{Latency: fixed(10 * time.Millisecond)}, Bandwidth: 1000, MaxQueueDelay: 250 * time.Millisecond})
	ms := int64(time.Millisecond)
	at1, _ := n.Send(0, 0, 1, 0, 100)
	if at1 != 110*ms {
		t.Errorf("first arrival %dms, want 110", at1/ms)
	}
	// The second message waits for the uplink (departs at 200ms).
	at2, _ := n.Send(0, 0, 2, 0, 100)
	if at2 != 210*ms {
		t.Errorf("second arrival %dms, want 210", at2/ms)
	}
	n.Send(0, 0, 1, 0, 100) // waits 200ms: within the queue bound
	if _, ok := n.Send(0, 0, 1, 0, 100); ok {
		t.Error("message queued beyond MaxQueueDelay was not dropped")
	}
	if n.Dropped[DropQueue] != 1 {
		t.Errorf("queue drops %d", n.Dropped[DropQueue])
	}
	if b, m := n.Sent(0, 0); b != 300 || m != 3 {
		t.Errorf("sent %d bytes %d msgs; queue drop must not count", b, m)
	}
	// Receiver downlink: two senders to one receiver at once serialise.
	n2 := newNet(t, Config{Nodes: 3, Local: Link{Latency: fixed(0)}, Bandwidth: 1000})
	a, _ := n2.Send(0, 0, 2, 0, 100)
	b, _ := n2.Send(0, 1, 2, 0, 100)
	if a != 100*ms || b != 200*ms {
		t.Errorf("downlink arrivals %d, %d ms; want 100, 200", a/ms, b/ms)
	}
}

func TestAccountingByKind(t *testing.T) {
	n := newNet(t, Config{Nodes: 2, Local: Link{Latency: fixed(0)}, Kinds: 2})
	n.Send(0, 0, 1, 0, 10)
	n.Send(0, 0, 1, 1, 7)
	n.Deliver(0, 0, 1, 1, 7, true)
	if b, _ := n.Sent(0, 0); b != 10 {
		t.Errorf("kind 0 sent %d", b)
	}
	if b, _ := n.Sent(0, 1); b != 7 {
		t.Errorf("kind 1 sent %d", b)
	}
	if b, m := n.Received(1, 1); b != 7 || m != 1 {
		t.Errorf("kind 1 received %d/%d", b, m)
	}
	if n.TotalSent(0) != 10 || n.TotalReceived(1) != 7 || n.TotalReceived(0) != 0 {
		t.Error("totals wrong")
	}
}

func TestConfigRejectsAllProblems(t *testing.T) {
	_, err := New(Config{Nodes: 0, Local: Link{Latency: Latency{Dist: "gaussian"}, Loss: 1}, Wide: Link{Latency: fixed(0)}, Bandwidth: -1})
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"nodes 0", "gaussian", "loss 1", "bandwidth -1"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestCPUPoolServesFIFO: jobs on a shared pool of processors finish at the
// times a first-come-first-served C-server queue gives, with explicit
// arrival times.
func TestCPUPoolServesFIFO(t *testing.T) {
	ms := int64(time.Millisecond)
	for _, tt := range []struct {
		name     string
		cpus     int
		service  time.Duration
		arrive   []int64
		want     []int64
		wait     int64 // total
		maxWait  int64
		busyJobs int
	}{
		{"zero cost finishes at arrival", 1, 0, []int64{0, 0, 3 * ms}, []int64{0, 0, 3 * ms}, 0, 0, 3},
		{"one cpu queues a burst", 1, time.Millisecond, []int64{0, 0, 0}, []int64{ms, 2 * ms, 3 * ms}, 3 * ms, 2 * ms, 3},
		{"two cpus serve two at once", 2, time.Millisecond, []int64{0, 0, 0}, []int64{ms, ms, 2 * ms}, ms, ms, 3},
		{"idle gap resets the queue", 1, time.Millisecond, []int64{0, ms / 2, 5 * ms}, []int64{ms, 2 * ms, 6 * ms}, ms / 2, ms / 2, 3},
		{"staggered on two", 2, 2 * time.Millisecond, []int64{0, ms, ms, 4 * ms}, []int64{2 * ms, 3 * ms, 4 * ms, 6 * ms}, ms, ms, 4},
	} {
		p, err := NewCPUPool(tt.cpus, tt.service)
		if err != nil {
			t.Fatal(err)
		}
		for i, at := range tt.arrive {
			if got := p.Serve(at); got != tt.want[i] {
				t.Errorf("%s: job %d arriving at %v done at %v, want %v", tt.name, i, time.Duration(at), time.Duration(got), time.Duration(tt.want[i]))
			}
		}
		if p.Jobs != uint64(len(tt.arrive)) || p.Wait != tt.wait || p.MaxWait != tt.maxWait || p.Busy != int64(tt.busyJobs)*int64(tt.service) {
			t.Errorf("%s: jobs %d wait %v max %v busy %v, want %d, %v, %v, %v", tt.name, p.Jobs, time.Duration(p.Wait), time.Duration(p.MaxWait),
				time.Duration(p.Busy), len(tt.arrive), time.Duration(tt.wait), time.Duration(tt.maxWait), time.Duration(tt.busyJobs)*tt.service)
		}
		if p.Err() != nil {
			t.Errorf("%s: %v", tt.name, p.Err())
		}
	}
}

// TestCPUPoolBurst: k jobs arriving together on C processors finish in
// waves of C, job i at (⌊i/C⌋+1)·service.
func TestCPUPoolBurst(t *testing.T) {
	const s = 300 * time.Microsecond
	for cpus := 1; cpus <= 4; cpus++ {
		for k := 1; k <= 12; k++ {
			p, err := NewCPUPool(cpus, s)
			if err != nil {
				t.Fatal(err)
			}
			at := int64(7 * time.Millisecond)
			for i := range k {
				want := at + int64(i/cpus+1)*int64(s)
				if got := p.Serve(at); got != want {
					t.Errorf("C=%d k=%d: job %d done at %v, want %v", cpus, k, i, time.Duration(got), time.Duration(want))
				}
			}
		}
	}
}

// TestCPUPoolRejects: a pool needs a processor and a non-negative service
// time, and an arrival out of order is served in order and reported.
func TestCPUPoolRejects(t *testing.T) {
	for _, tt := range []struct {
		cpus int
		s    time.Duration
	}{{0, time.Millisecond}, {-1, 0}, {2, -time.Nanosecond}} {
		if _, err := NewCPUPool(tt.cpus, tt.s); err == nil {
			t.Errorf("NewCPUPool(%d, %v) accepted", tt.cpus, tt.s)
		}
	}
	p, err := NewCPUPool(1, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	p.Serve(int64(5 * time.Millisecond))
	if got := p.Serve(int64(time.Millisecond)); got != int64(7*time.Millisecond) {
		t.Errorf("out-of-order job done at %v, want 7ms (queued behind the first)", time.Duration(got))
	}
	if p.Err() == nil {
		t.Error("out-of-order arrival not reported")
	}
}

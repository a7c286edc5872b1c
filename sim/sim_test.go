package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/sim/internal/simnet"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestMain fails the run if a goroutine outlives the tests (the real-node
// comparison runs federation agents).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

func TestBuiltinsParse(t *testing.T) {
	names := BuiltinNames()
	for _, want := range []string{"steady", "bulk-import", "partition-heal", "churn", "lossy-wan"} {
		if !contains(names, want) {
			t.Errorf("built-in %q missing from %v", want, names)
		}
	}
	for _, n := range names {
		s, err := Builtin(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if s.Name != n {
			t.Errorf("%s: name %q", n, s.Name)
		}
	}
	if _, err := Builtin("../steady"); err == nil {
		t.Error("path accepted as a built-in name")
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestScenarioRejectsBadFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"unknown-field.json", []string{"nodez: unknown field"}},
		{"bad-duration.json", []string{`duration: want a duration string such as "250ms", got 60`}},
		{"nested-unknown.json", []string{"partitions[1].bogus: unknown field", "network.latency.jitter: unknown field",
			`protocol.Push_Interval: unknown field (did you mean "push_interval"?)`, "nodez: unknown field"}},
		{"nested-types.json", []string{"seed: want an unsigned 64-bit integer, got -1", `nodes: want a 64-bit integer, got "ten"`,
			"duration: want a duration string", `agencies.school: want a number, got "many"`, "people.count: want a 64-bit integer, got 1.5",
			`publish.start: "5 seconds" is not a duration`, "bulk_imports: want an array, got {",
			"partitions[0].from: want a duration string", `partitions[1].nodes[1]: want a 64-bit integer, got "2"`,
			"network.latency: want an object, got []", "network.wide_latency.median: want a duration string",
			`churn[0].keep_disk: want true or false, got "yes"`, "protocol.fanout: want a 64-bit integer, got 1e30"}},
		{"duplicate-key.json", []string{"people.count: given twice", "nodes: given twice"}},
		{"syntax.json", []string{"parse scenario: line 4, column 13: invalid character ','"}},
		{"not-object.json", []string{`scenario: want an object, got ["steady"]`}},
		{"trailing.json", []string{"trailing data"}},
		{"not-json.json", []string{"parse scenario"}},
		{"partition-groups.json", []string{
			"partitions[0]: give exactly one of fraction, nodes, region (got 2)",
			"partitions[1].region: 3 is not one of network.regions (0)",
			"partitions[2].nodes[1]: 10 outside 0..9", "partitions[2].nodes[2]: -1 outside",
			"partitions[3]: give exactly one of fraction, nodes, region (got 0)",
		}},
		{"many-problems.json", []string{
			"nodes: 1 outside", "people.count: 0", "people.zipf_s: 0.5",
			"publish.rate_per_second: -1", "publish.start: 20s outside the run",
			"network.latency: distribution \"gaussian\"", "network.loss: 1.5",
			"partitions[0].fraction: 1.2", "partitions[0].until: 4s not after from 5s",
			"churn[0].action: \"explode\"", "churn[0].keep_disk",
			"replication: \"sharded\" is not implemented", "protocol.fanout: 0", "protocol.push_interval: 0s",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "bad", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = ParseScenario(f)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrBadScenario) {
				t.Errorf("error does not wrap ErrBadScenario: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestScenarioErrorsGolden: every bad fixture's whole error message, as
// a user sees it, against testdata/bad/<name>.golden (go test -run
// ScenarioErrorsGolden ./sim/ -update regenerates them).
func TestScenarioErrorsGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := LoadScenario(file)
			if err == nil {
				t.Fatal("accepted")
			}
			testutil.Golden(t, strings.TrimSuffix(file, ".json")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

// TestDecodeStrictAgreesWithEncodingJSON: on valid files the path-naming
// decoder gives exactly what encoding/json gives.
func TestDecodeStrictAgreesWithEncodingJSON(t *testing.T) {
	docs := map[string][]byte{
		"all fields": []byte(`{"name":"x","seed":9,"nodes":12,"duration":"30s","agencies":{"school":2,"gp-practice":1},
			"people":{"count":50,"max_agencies":4,"zipf_s":1.5},"publish":{"rate_per_second":3,"start":"2s","stop":"20s"},
			"bulk_imports":[{"node":1,"at":"3s","entries":5}],"network":{"latency":{"distribution":"uniform","min":"1ms","max":"5ms"},
			"loss":0.01,"regions":2,"wide_latency":{"distribution":"lognormal","median":"40ms","sigma":0.3},"wide_loss":0.02,
			"bandwidth_bytes_per_second":100000,"max_queue_delay":"1s"},"partitions":[{"region":1,"from":"5s","until":"9s"},
			{"nodes":[2,3],"from":"1s","until":"2s"}],"churn":[{"action":"crash","fraction":0.2,"at":"4s","rejoin_after":"3s",
			"keep_disk":true,"failure_detection":"2s"}],"replication":"full","protocol":{"fanout":2,"push_interval":"100ms",
			"anti_entropy_interval":"3s","max_message_size":4096,"max_push_queue":10,"max_hops":5,"stamp_threshold":8,
			"relay_fanout":4,"max_send_rate":1000},"lookups_per_second":5,"sample_interval":"500ms","digest_depth":3}`),
		"nulls": []byte(`{"name":"n","nodes":null,"network":{"wide_latency":null},"partitions":null}`),
	}
	for _, n := range BuiltinNames() {
		b, err := builtinFS.ReadFile("scenarios/" + n + ".json")
		if err != nil {
			t.Fatal(err)
		}
		docs[n] = b
	}
	for name, b := range docs {
		want, got := DefaultScenario(), DefaultScenario()
		want.Agencies, got.Agencies = nil, nil
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("%s: encoding/json: %v", name, err)
		}
		if errs := decodeStrict(b, &got); len(errs) > 0 {
			t.Fatalf("%s: %v", name, errs)
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: decoded\n%+v\nencoding/json\n%+v", name, got, want)
		}
	}
}

func TestLoadScenarioUnknown(t *testing.T) {
	_, err := LoadScenario("no-such-scenario")
	if err == nil || !strings.Contains(err.Error(), "steady") {
		t.Errorf("want an error listing the built-ins, got %v", err)
	}
}

// small returns a built-in scaled down for the test suite.
func small(t *testing.T, name string, nodes int) *Scenario {
	t.Helper()
	s, err := Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	s.Nodes = nodes
	s.People.MaxAgencies = min(s.People.MaxAgencies, nodes)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

func runNoWall(t *testing.T, s *Scenario) (*Report, []byte) {
	t.Helper()
	r, err := Run(context.Background(), s)
	if err != nil {
		t.Fatalf("seed %d: %v", s.Seed, err)
	}
	r.Wall = nil
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	return r, b.Bytes()
}

// TestSteadyBounds is the phantom.go-style check: a fixed seed, a small
// federation, and the bounds the protocol must meet.
func TestSteadyBounds(t *testing.T) {
	s := small(t, "steady", 40)
	r, b1 := runNoWall(t, s)
	t.Logf("seed %d: all-nodes p50 %.0f ms p99 %.0f ms, replica p50 %.0f ms, push share %.2f",
		s.Seed, r.Visibility.AllNodes.P50, r.Visibility.AllNodes.P99, r.Visibility.Replica.P50, r.Theory.MeasuredPushShare)
	if r.Entries.Published < 100 {
		t.Errorf("only %d entries published", r.Entries.Published)
	}
	if r.Visibility.NeverDelivered != 0 {
		t.Errorf("%d entries never reached every node", r.Visibility.NeverDelivered)
	}
	if !r.Convergence.Identical {
		t.Errorf("replicas differ at the end: %+v", r.Convergence)
	}
	// Push reaches most replicas within a second; anti-entropy (10 s)
	// bounds the tail.
	if p := r.Visibility.Replica.P50; p > 1000 {
		t.Errorf("replica p50 %.0f ms > 1 s", p)
	}
	if p := r.Visibility.AllNodes.Max; p > 3*s.Protocol.AntiEntropyInterval.D().Seconds()*1000 {
		t.Errorf("all-nodes max %.0f ms beyond 3 anti-entropy intervals", p)
	}
	// The protocol's adaptive relay fan-out (⌈ln N⌉+3) makes push alone
	// reach nearly every replica, so half the entries are everywhere
	// within a couple of push rounds.
	if r.Theory.MeasuredPushShare < 0.9 {
		t.Errorf("push delivered only %.2f of replicas", r.Theory.MeasuredPushShare)
	}
	if p := r.Visibility.AllNodes.P50; p > 2000 {
		t.Errorf("all-nodes p50 %.0f ms > 2 s", p)
	}
	if r.Recall.OutsideFaults < 0.99 {
		t.Errorf("recall %.4f without faults", r.Recall.OutsideFaults)
	}
	if r.Bandwidth.RatioToMemberlist <= 0 || r.Bandwidth.RatioToMemberlist >= 1 {
		t.Errorf("ratio to memberlist broadcast %.3f", r.Bandwidth.RatioToMemberlist)
	}
	// Same seed, same scenario: byte-identical report.
	_, b2 := runNoWall(t, s)
	if !bytes.Equal(b1, b2) {
		t.Error("two runs with the same seed gave different reports")
	}
	s.Seed++
	_, b3 := runNoWall(t, s)
	if bytes.Equal(b1, b3) {
		t.Error("a different seed gave the same report")
	}
}

func TestPartitionHealConverges(t *testing.T) {
	s := small(t, "partition-heal", 40)
	r, _ := runNoWall(t, s)
	if len(r.Heals) != 1 {
		t.Fatalf("heals %+v", r.Heals)
	}
	h := r.Heals[0]
	t.Logf("seed %d: converged %.2f s after the heal, recall full after %.2f s, during faults %.3f", s.Seed, h.ConvergedAfter, h.RecallFullAfter, r.Recall.DuringFaults)
	if h.ConvergedAfter < 0 || h.ConvergedAfter > 6*s.Protocol.AntiEntropyInterval.D().Seconds() {
		t.Errorf("converged after %.2f s", h.ConvergedAfter)
	}
	if h.RecallFullAfter < 0 {
		t.Error("recall never returned to 100 %")
	}
	if r.Recall.DuringFaults >= 0.99 {
		t.Errorf("recall %.3f during a partition of a third: the partition did nothing", r.Recall.DuringFaults)
	}
	if r.Network.PartitionMessages == 0 {
		t.Error("no message was dropped by the partition")
	}
	if !r.Convergence.Identical || r.Visibility.NeverDelivered != 0 {
		t.Errorf("not converged at the end: %+v, never %d", r.Convergence, r.Visibility.NeverDelivered)
	}
}

func TestChurnAndLossyRun(t *testing.T) {
	for _, name := range []string{"churn", "lossy-wan", "bulk-import"} {
		t.Run(name, func(t *testing.T) {
			s := small(t, name, 30)
			if name == "bulk-import" {
				s.BulkImports[0].Entries = 300
			}
			r, _ := runNoWall(t, s)
			t.Logf("seed %d: never %d, identical %v, lost %d, recall %.3f", s.Seed, r.Visibility.NeverDelivered, r.Convergence.Identical, r.Network.LostMessages, r.Recall.Mean)
			if !r.Convergence.Identical {
				t.Errorf("replicas differ at the end: %+v", r.Convergence)
			}
			switch name {
			case "lossy-wan":
				if r.Network.LostMessages == 0 {
					t.Error("no message lost on a lossy network")
				}
				// Every message meets a loss of 0.5 % (same region) or 5 %
				// (between regions): the lost share lies between.
				if n := r.Network; n.SentMessages < 1000 || n.LostFraction < 0.005 || n.LostFraction > 0.05 ||
					math.Abs(n.LostFraction-float64(n.LostMessages)/float64(n.SentMessages)) > 1e-5 || n.LostBytes < n.LostMessages*40 {
					t.Errorf("network %+v: want lost / sent between the two loss rates, and the lost bytes", n)
				}
			case "churn":
				if r.Network.DownDrops == 0 && r.Entries.SkippedDown == 0 {
					t.Error("churn had no visible effect")
				}
			case "bulk-import":
				if r.Entries.Bulk != 300 {
					t.Errorf("bulk %d", r.Entries.Bulk)
				}
			}
		})
	}
}

func TestPartitionGroups(t *testing.T) {
	r1 := 1
	tests := []struct {
		name string
		p    Partition
		want string
	}{
		{"fraction", Partition{Fraction: 0.4}, "1111000000"},
		{"nodes", Partition{Nodes: []int{0, 9, 5}}, "1000010001"},
		{"region", Partition{Region: &r1}, "0100100100"},
	}
	for _, tt := range tests {
		side := tt.p.side(10, 3)
		got := make([]byte, len(side))
		for i, v := range side {
			got[i] = '0' + v
		}
		if string(got) != tt.want {
			t.Errorf("%s: side %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestRegionPartitionRun(t *testing.T) {
	// A lossless network, so that convergence is certain within the run
	// (under loss an exchange can fail; lossy-wan covers that).
	s := small(t, "steady", 24)
	s.Network.Regions = 3
	r0 := 0
	s.Partitions = []Partition{{Region: &r0, From: Duration(10 * time.Second), Until: Duration(20 * time.Second)}}
	r, _ := runNoWall(t, s)
	if len(r.Heals) != 1 || r.Heals[0].ConvergedAfter < 0 {
		t.Fatalf("seed %d: heals %+v", s.Seed, r.Heals)
	}
	if r.Network.PartitionMessages == 0 {
		t.Error("region partition dropped nothing")
	}
}

func TestCancelGivesPartialReport(t *testing.T) {
	s := small(t, "steady", 20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := Run(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Partial || !strings.Contains(r.PartialReason, "canceled") {
		t.Errorf("partial %v %q", r.Partial, r.PartialReason)
	}
}

func TestSimMain(t *testing.T) {
	dir := t.TempDir()
	out, svg := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg")
	var stdout, stderr bytes.Buffer
	code := SimMain(context.Background(), []string{"--scenario", "steady", "--nodes", "20", "--duration", "15s", "--out", out, "--svg", svg}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "time to all nodes") {
		t.Errorf("summary: %s", stdout.String())
	}
	for _, f := range []string{out, svg} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	b, _ := os.ReadFile(svg)
	if !bytes.HasPrefix(b, []byte("<svg")) || !bytes.Contains(b, []byte("</svg>")) {
		t.Error("not an SVG document")
	}
	stderr.Reset()
	if code := SimMain(context.Background(), []string{"--scenario", "steady", "--nodes", "1"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("bad override: exit %d", code)
	}
	if code := SimMain(context.Background(), []string{"--bogus"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	if !strings.Contains(stderr.String(), "Exit codes:") {
		t.Errorf("usage does not document the exit codes: %s", stderr.String())
	}
	if code := SimMain(context.Background(), []string{"--compare-real", "10", "--tolerance", "-1"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("negative tolerance: exit %d", code)
	}
	if code := SimMain(context.Background(), []string{"--scenario", "-"}, strings.NewReader(`{"name":"stdin","nodes":5,"duration":"5s","people":{"count":10,"max_agencies":3,"zipf_s":2}}`), &stdout, &stderr); code != 0 {
		t.Errorf("stdin scenario: exit %d: %s", code, stderr.String())
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(tt.q)
		if d := float64(got-tt.want) / float64(tt.want); d < -0.02 || d > 0.02 {
			t.Errorf("q%.2f = %v, want %v ± 2%%", tt.q, got, tt.want)
		}
	}
	for us := uint64(0); us < 1<<30; us = us*3/2 + 1 {
		lo, w := histLower(histIndex(us))
		if us < lo || us >= lo+w {
			t.Fatalf("%d µs in bucket [%d, %d)", us, lo, lo+w)
		}
	}
}

func TestTheoryModels(t *testing.T) {
	if p := pushCoverage(3); p < 0.93 || p > 0.95 {
		t.Errorf("infect-and-die coverage at fanout 3: %v, want ≈ 0.94", p)
	}
	if r := serfModel(1000, 3, 0); r < 6 || r > 12 {
		t.Errorf("serf model rounds at N=1000, f=3: %d", r)
	}
	if serfModel(1000, 3, 0.5) <= serfModel(1000, 3, 0) {
		t.Error("loss does not slow the model")
	}
}

// TestOverlappingPartitionsHealIndependently runs a scenario whose two
// partitions overlap in time and checks each heal's convergence against an
// oracle computed from the entries' reach counters (independent of the
// heal tracking): the first moment every up node holds every entry
// published before that heal.
func TestOverlappingPartitionsHealIndependently(t *testing.T) {
	sc, err := LoadScenario(filepath.Join("testdata", "overlapping-partitions.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSimulation(sc)
	if err != nil {
		t.Fatal(err)
	}
	// oracle[i]: virtual time heal i converged, -1 until then. Entries
	// are accepted only while a message is handled (no churn here), so
	// the state seen at one delivery is the state left by the previous
	// one, at time prev.
	oracle := []int64{-1, -1}
	prev := int64(0)
	check := func(at int64) {
		for i := range s.heals {
			h := &s.heals[i]
			if oracle[i] >= 0 {
				continue
			}
			all := true
			for idx := range h.k {
				if int(s.entries[idx].reach) != s.upCount {
					all = false
					break
				}
			}
			if all {
				oracle[i] = max(at, h.at)
			}
		}
	}
	s.trace = func(ev *simnet.Event, delivered bool) {
		check(prev)
		prev = ev.At
	}
	if err := s.loop(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(prev)
	r := s.report("")
	if !r.Convergence.Identical || r.Visibility.NeverDelivered != 0 {
		t.Fatalf("seed %d: replicas not identical at the end: %+v, never %d", sc.Seed, r.Convergence, r.Visibility.NeverDelivered)
	}
	if len(r.Heals) != 2 {
		t.Fatalf("heals %+v", r.Heals)
	}
	for i, h := range r.Heals {
		want := secs(oracle[i] - s.heals[i].at)
		t.Logf("seed %d: partition %d healed at %.0f s, converged after %.3f s (oracle %.3f s)", sc.Seed, h.Partition, h.HealedAt, h.ConvergedAfter, want)
		if oracle[i] < 0 {
			t.Fatalf("partition %d: the oracle never saw convergence", i)
		}
		if h.ConvergedAfter != want {
			t.Errorf("partition %d: converged after %.3f s, oracle says %.3f s", i, h.ConvergedAfter, want)
		}
	}
	// Entries published before the first heal are a subset of those
	// published before the second: the first cannot converge later.
	if a, b := r.Heals[0].HealedAt+r.Heals[0].ConvergedAfter, r.Heals[1].HealedAt+r.Heals[1].ConvergedAfter; a > b {
		t.Errorf("heal 0 converged at %.3f s, after heal 1 at %.3f s", a, b)
	}
}

// TestHeapPerNodeIgnoresWhatRanBefore: memory that something before the
// run still held when it started, and let go during it (here a ballast in
// a sync.Pool, which survives one GC: the real agents of --compare-real
// leave pools and exiting goroutines behind), must not hide the
// simulation's own heap.
func TestHeapPerNodeIgnoresWhatRanBefore(t *testing.T) {
	s := small(t, "steady", 200)
	s.Shorten(10 * time.Second)
	perNode := func(ballast bool) int64 {
		var pool sync.Pool
		if ballast {
			ballast := make([]byte, 64<<20)
			pool.Put(&ballast)
		}
		r, err := Run(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		return r.Wall.HeapPerNode
	}
	clean := perNode(false)
	after := perNode(true)
	t.Logf("heap per node %d B alone, %d B after a released 64 MiB ballast", clean, after)
	if clean < 4<<10 || clean > 256<<10 {
		t.Errorf("heap per node %d B alone, outside 4..256 KiB", clean)
	}
	if d := float64(after-clean) / float64(clean); d < -0.1 || d > 0.1 {
		t.Errorf("heap per node %d B after a released ballast, %d B alone", after, clean)
	}
}

// TestCompareRealVerdict: --compare-real prints a verdict and its exit
// code says whether the stated tolerance was met. The real agents are
// replaced by a canned comparison; the agreement rule is the real one.
func TestCompareRealVerdict(t *testing.T) {
	tests := []struct {
		name     string
		p50, p90 float64
		never    int // of 100 entries the real agents published (the sim: 2)
		want     int
		verdict  string
	}{
		{"agree", 0.97, 1.00, 3, 0, "verdict: AGREE"},
		{"edge", 0.65, 1.35, 0, 0, "verdict: AGREE"},
		{"p90 off", 0.78, 0.60, 0, 1, "verdict: DISAGREE (p90 ratio 0.60 outside 0.65..1.35)"},
		{"p50 off", 1.40, 1.00, 0, 1, "verdict: DISAGREE (p50 ratio 1.40 outside 0.65..1.35)"},
		{"no data", 0, 0, 0, 1, "verdict: DISAGREE"},
		{"real agents collapsed", 1.00, 1.00, 99, 1, "verdict: DISAGREE (real agents brought 1.0% of entries to every node, the simulation 98.0%)"},
		{"delivery at the edge", 1.00, 1.00, 36, 0, "verdict: AGREE"},
	}
	defer func(f func(context.Context, *Scenario, int, float64, io.Writer) (*Comparison, error)) {
		compareReal = f
	}(compareReal)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compareReal = func(_ context.Context, sc *Scenario, nodes int, tol float64, _ io.Writer) (*Comparison, error) {
				c := &Comparison{Scenario: sc.Name, Nodes: nodes, RatioP50: tt.p50, RatioP90: tt.p90, Tolerance: tol,
					Real: &RealResult{Published: 100, NeverDelivered: tt.never}, Sim: RealResult{Published: 100, NeverDelivered: 2}}
				c.judge()
				return c, nil
			}
			var stdout, stderr bytes.Buffer
			code := SimMain(context.Background(), []string{"--scenario", "steady", "--nodes", "10", "--duration", "5s", "--compare-real", "10"}, nil, &stdout, &stderr)
			if code != tt.want {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.want, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.verdict) {
				t.Errorf("stdout lacks %q:\n%s", tt.verdict, stdout.String())
			}
			if tt.want != 0 && !strings.Contains(stderr.String(), "DISAGREE") {
				t.Errorf("stderr does not say why the exit is %d: %s", code, stderr.String())
			}
		})
	}
}

package sim

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

// RealResult is what the real-node harness measured: N federation.Agents
// (memberlist gossip and mutual-TLS HTTP between them, on loopback, in real
// time) given the same publications as the simulation.
type RealResult struct {
	Nodes     int `json:"nodes"`
	Published int `json:"published"`
	// AllNodes and Replica are time-to-visibility as in the simulation
	// (publication to the store of every node; to each replica).
	AllNodes Percentiles `json:"all_nodes"`
	Replica  Percentiles `json:"replica"`
	// FirstHop is, per entry, publication to its first arrival at a node
	// other than its origin: one message's whole cost on these agents
	// (engine, HTTP, mutual TLS, JSON, store, on a shared CPU). Only the
	// real harness measures it; CompareReal calibrates the simulated
	// link latency from its median.
	FirstHop Percentiles `json:"first_hop,omitzero"`
	// AllNodesEarly and AllNodesLate split AllNodes between the first and
	// the second half of the publications: the early entries pay for the
	// agents' first mutual-TLS connections to one another. Only the real
	// harness measures them (reported, not judged).
	AllNodesEarly  Percentiles `json:"all_nodes_first_half,omitzero"`
	AllNodesLate   Percentiles `json:"all_nodes_second_half,omitzero"`
	NeverDelivered int         `json:"never_delivered"`
	// Bytes per node per second of protocol messages (the engines' own
	// counts: the message bytes the sim also counts, without HTTP/TLS
	// framing), over the measurement window.
	PushBytesPerNodeSec float64 `json:"push_bytes_per_node_per_second"`
	AEBytesPerNodeSec   float64 `json:"anti_entropy_bytes_per_node_per_second"`
	WindowSeconds       float64 `json:"window_seconds"`
	// Rejoins counts Join calls the harness repeated for nodes that still
	// missed peers 10 s into start-up.
	Rejoins        int     `json:"rejoins"`
	StartupSeconds float64 `json:"startup_seconds"`
	// SendDropped, SendFailed and InboundDropped are the agents' own
	// back-pressure counters (federation.Stats) over the window.
	SendDropped    uint64 `json:"send_dropped"`
	SendFailed     uint64 `json:"send_failed"`
	InboundDropped uint64 `json:"inbound_dropped"`
	// Pulls, PullRetries and PullsAbandoned are the engines' pull-on-
	// announcement counters (protocol.Stats) over the window: versions
	// asked for because a peer announced them, further requests for one,
	// and versions left to anti-entropy.
	Pulls          uint64 `json:"pulls"`
	PullRetries    uint64 `json:"pull_retries"`
	PullsAbandoned uint64 `json:"pulls_abandoned"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1-minute figure: real
	// nodes share the machine's cores, and a busy machine slows them
	// where the simulation does not notice (-1: unknown).
	LoadBefore float64 `json:"load_average_before"`
	LoadAfter  float64 `json:"load_average_after"`
	// What the agents' work cost the machine, the shared-CPU model's
	// inputs (see calibrateQueue). GOMAXPROCS is the processors the
	// agents' goroutines ran on. CPUSeconds is the process's CPU time
	// (user + system) over the window, Messages the protocol messages
	// the agents received in it. BackgroundCPUs is the process's CPU rate
	// (CPU seconds per second) over IdleSeconds with the mesh formed and
	// nothing published, just before the window: memberlist's gossip and
	// probes, engine ticks, which no message causes. OtherCPUs is the
	// rest of the machine's CPU rate over the window (/proc/stat's busy
	// and stolen time of every processor less this process's; -1:
	// unknown). CPUPerMessageMs is (CPUSeconds − BackgroundCPUs ×
	// WindowSeconds) / Messages: one message's cost, both ends.
	GOMAXPROCS      int     `json:"gomaxprocs,omitempty"`
	CPUSeconds      float64 `json:"cpu_seconds,omitempty"`
	Messages        uint64  `json:"messages_received,omitempty"`
	IdleSeconds     float64 `json:"idle_seconds,omitempty"`
	BackgroundCPUs  float64 `json:"background_cpus,omitempty"`
	OtherCPUs       float64 `json:"other_processes_cpus,omitempty"`
	CPUPerMessageMs float64 `json:"cpu_per_message_ms,omitempty"`
	// GCCycles, GCPauseMs and GCMaxPauseMs are the garbage collector's
	// cycles and stop-the-world pauses (total, longest of those the
	// runtime still lists) over the window: every agent stops at once.
	// Reported, not model inputs.
	GCCycles     uint32  `json:"gc_cycles,omitempty"`
	GCPauseMs    float64 `json:"gc_pause_ms,omitempty"`
	GCMaxPauseMs float64 `json:"gc_max_pause_ms,omitempty"`
}

// gcDelta is the collector's cycles, total pause and longest pause between
// two MemStats (the longest among the last 256 the runtime keeps).
func gcDelta(a, b *runtime.MemStats) (cycles uint32, total, longest time.Duration) {
	cycles = b.NumGC - a.NumGC
	for i := uint32(0); i < min(cycles, uint32(len(b.PauseNs))); i++ {
		longest = max(longest, time.Duration(b.PauseNs[(b.NumGC-1-i)%uint32(len(b.PauseNs))]))
	}
	return cycles, time.Duration(b.PauseTotalNs - a.PauseTotalNs), longest
}

// cpuPerMessage is one message's CPU in ms: the CPU over the window less
// the background rate (CPU seconds per second) over it, over the messages
// (0 with none).
func cpuPerMessage(cpu time.Duration, background float64, window time.Duration, msgs uint64) float64 {
	if msgs == 0 {
		return 0
	}
	return round3(max(cpu.Seconds()-background*window.Seconds(), 0) * 1000 / float64(msgs))
}

// idleWindow is how long RunReal measures the agents' background CPU rate
// before publishing.
const idleWindow = 3 * time.Second

// userHZ is the unit of /proc/stat's times on Linux (USER_HZ, 100 on every
// architecture Go supports).
const userHZ = 100

// machineBusy returns the time every processor of the machine has spent
// busy (user, nice, system, irq, softirq) or stolen by the hypervisor
// since boot, from /proc/stat, and false where unknown.
func machineBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseProcStat(string(b))
}

// parseProcStat reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal …, in USER_HZ ticks.
func parseProcStat(stat string) (time.Duration, bool) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var busy uint64
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += n
		if busy < n || busy > math.MaxInt64/uint64(time.Second/userHZ) {
			return 0, false // overflow: not a real /proc/stat
		}
	}
	return time.Duration(busy) * (time.Second / userHZ), true
}

// cpuTime returns the process's CPU time so far (user + system), or 0
// where unknown.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage returns the 1-minute load average, or -1 where unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var f float64
	if _, err := fmt.Sscan(string(b), &f); err != nil {
		return -1
	}
	return f
}

// Comparison sets a real-node run beside the simulation of the same
// scenario (see CompareReal).
type Comparison struct {
	Scenario string      `json:"scenario"`
	Nodes    int         `json:"nodes"`
	Real     *RealResult `json:"real"`
	Sim      RealResult  `json:"sim"`
	// Ratios are sim / real.
	RatioMean      float64 `json:"ratio_all_nodes_mean"`
	RatioP50       float64 `json:"ratio_all_nodes_p50"`
	RatioP90       float64 `json:"ratio_all_nodes_p90"`
	RatioReplica50 float64 `json:"ratio_replica_p50"`
	// RatioOver2s compares the fraction of entries that took 2 s or more
	// to reach every node (those left to anti-entropy): the weight of the
	// distribution's second mode.
	RatioOver2s float64 `json:"ratio_fraction_over_2s"`
	// RatioPushPerEntry compares push bytes per node per published entry
	// (push traffic follows the workload); RatioAEPerSec anti-entropy
	// bytes per node per second (it follows the clock).
	RatioPushPerEntry float64 `json:"ratio_push_bytes_per_node_per_entry"`
	RatioAEPerSec     float64 `json:"ratio_anti_entropy_bytes_per_node_per_second"`
	// RatioPullsPerEntry compares the pull path: versions pulled on
	// announcement per node per published entry (about 1 where relays
	// announce and nodes pull, the eager push taking the rest).
	RatioPullsPerEntry float64 `json:"ratio_pulls_per_node_per_entry"`
	// LoopbackLatency is the one-way latency median the simulation would
	// use for loopback (realScenario), and LoopbackP50 and LoopbackP90 the
	// all-nodes percentiles it gives: a simulated message there costs only
	// the wire, which on loopback is nearly nothing, while a real message
	// costs the agents' processing (see CalibratedLatency).
	LoopbackLatencyMs float64 `json:"loopback_latency_median_ms"`
	LoopbackP50       float64 `json:"loopback_all_nodes_p50_ms"`
	LoopbackP90       float64 `json:"loopback_all_nodes_p90_ms"`
	// Model says in words what the judged simulation (Sim) is and where
	// its inputs came from: the shared-CPU queue (see calibrateQueue),
	// loopback latency, every received message a job of QueueServiceMs on
	// QueueCPUs processors all the nodes share, first come first served.
	// QueueAvailableCPUs is what the real run left the agents' messages
	// (QueueCPUs less the agents' background and the other processes'
	// CPU), which stretches the service time. SimCPU is the judged
	// simulation's pool over its run (utilisation, waits), and
	// RealUtilisation the real process's CPU over the window divided by
	// QueueCPUs, to set beside it.
	Model              string     `json:"model"`
	QueueCPUs          int        `json:"queue_cpus,omitempty"`
	QueueServiceMs     float64    `json:"queue_service_time_ms,omitempty"`
	QueueAvailableCPUs float64    `json:"queue_available_cpus,omitempty"`
	SimCPU             *CPUReport `json:"sim_cpu_pool,omitempty"`
	RealUtilisation    float64    `json:"real_cpu_utilisation,omitempty"`
	// FirstHopP50 and FirstHopP90 are the all-nodes percentiles of the
	// model judged before the shared-CPU queue, reported, not judged: a
	// lognormal one-way latency with the real first hop's median and the
	// σ that gives its p90 (CalibratedLatencyMs, CalibratedSigma; see
	// calibrate, and Calibration in words). Independent per-message
	// delays, where the real ones are correlated through one CPU.
	CalibratedLatencyMs float64 `json:"calibrated_latency_median_ms"`
	CalibratedSigma     float64 `json:"calibrated_latency_sigma"`
	Calibration         string  `json:"calibration"`
	FirstHopP50         float64 `json:"first_hop_model_all_nodes_p50_ms"`
	FirstHopP90         float64 `json:"first_hop_model_all_nodes_p90_ms"`
	// MedianOnlyP50 and MedianOnlyP90 are the all-nodes percentiles of the
	// same with the loopback σ: reported, not judged.
	MedianOnlyP50 float64 `json:"median_only_all_nodes_p50_ms"`
	MedianOnlyP90 float64 `json:"median_only_all_nodes_p90_ms"`
	// Tolerance is the agreement asked of the all-nodes p50 and p90
	// (|ratio−1| ≤ it for both); Agree says whether they met it. These
	// are the bulk of the distribution, which push governs. The mean is
	// reported but not judged: a few per cent of entries miss push and
	// wait for anti-entropy (seconds against a fraction of a second), so
	// the mean measures that fraction, which at a few dozen nodes and a
	// hundred entries is a handful of entries either way. The percentiles
	// are of the entries that reached every node, so Agree also asks that
	// the real agents brought as large a share of the entries to every
	// node as the simulation did, within the same tolerance: agents that
	// collapse and deliver a handful of entries do not agree on the
	// strength of that handful.
	Tolerance float64 `json:"tolerance"`
	Agree     bool    `json:"agree"`
}

// realScenario turns sc into the comparison scenario: loopback latency,
// no loss or faults, no lookup probes (so that the workload random stream
// gives the publication times only), and the given node count.
func realScenario(sc *Scenario, nodes int) *Scenario {
	c := *sc
	c.Name = sc.Name + "-loopback"
	c.Nodes = nodes
	c.People.MaxAgencies = min(c.People.MaxAgencies, nodes)
	c.Network = Network{Latency: Latency{Dist: "lognormal", Median: Duration(300 * time.Microsecond), Sigma: 0.5,
		Min: Duration(50 * time.Microsecond), Max: Duration(20 * time.Millisecond)}}
	c.Partitions, c.Churn, c.BulkImports = nil, nil, nil
	c.Lookups = 0
	return &c
}

// schedule returns the steady publications of sc with their times, as the
// simulation draws them (the workload stream with no lookup probes).
func schedule(sc *Scenario, pop *population) ([]involvement, []time.Duration) {
	r := rand.New(rand.NewPCG(sc.Seed, 0x574f524b))
	var invs []involvement
	var at []time.Duration
	end := sc.Publish.Stop.D()
	if end == 0 {
		end = sc.Duration.D()
	}
	t := sc.Publish.Start.D()
	for i := 0; i < len(pop.steady) && sc.Publish.Rate > 0; i++ {
		invs = append(invs, pop.steady[i])
		at = append(at, t)
		t += time.Duration(r.ExpFloat64() / sc.Publish.Rate * float64(time.Second))
		if t >= end {
			break
		}
	}
	return invs, at
}

// RunReal runs sc's steady publications on N real federation agents on
// loopback: enrol them under a fresh authority, start and join them, wait
// until every node sees every other, publish on the simulation's schedule,
// and wait (up to the scenario's remaining duration) until every replica
// holds every entry. Logs go to logw (nil: discarded).
func RunReal(ctx context.Context, sc *Scenario, logw io.Writer) (*RealResult, error) {
	if logw == nil {
		logw = io.Discard
	}
	load0 := loadAverage()
	start := time.Now()
	r := &realRun{sc: sc, pop: newPopulation(sc)}
	r.invs, r.at = schedule(sc, r.pop)
	r.keys = make([]locator.LookupKey, len(r.invs))
	for i, inv := range r.invs {
		r.keys[i] = lookupKey(sc.Seed, inv.person)
	}
	defer r.shutdown()
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := r.startAgents(ctx, logger); err != nil {
		return nil, err
	}
	rejoins, err := r.waitMesh(ctx, start)
	if err != nil {
		return nil, err
	}
	startup := time.Since(start)
	// The agents' background CPU rate, meshed and idle.
	idle0, ti := cpuTime(), time.Now()
	if err := sleepCtx(ctx, idleWindow); err != nil {
		return nil, err
	}
	idleSecs := time.Since(ti).Seconds()
	background := (cpuTime() - idle0).Seconds() / idleSecs
	stopWatching := r.watch()
	defer stopWatching()
	before, err := r.totals(ctx)
	if err != nil {
		return nil, err
	}
	var gc0, gc1 runtime.MemStats
	runtime.ReadMemStats(&gc0)
	cpu0 := cpuTime()
	busy0, busyOK := machineBusy()
	t0 := time.Now()
	if err := r.publish(ctx, t0); err != nil {
		return nil, err
	}
	if err := r.waitComplete(ctx, t0.Add(sc.Duration.D()-r.at[0])); err != nil {
		return nil, err
	}
	window := time.Since(t0)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&gc1)
	gcN, gcTotal, gcMax := gcDelta(&gc0, &gc1)
	busy1, busyOK1 := machineBusy()
	other := -1.0
	if busyOK && busyOK1 {
		// Ticks are 10 ms: clamp the rounding below 0.
		other = round3(max((busy1-busy0-cpu).Seconds()/window.Seconds(), 0))
	}
	after, err := r.totals(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := sc.Nodes
	msgs := after.msgs - before.msgs
	perMsg := cpuPerMessage(cpu, background, window, msgs)
	per := func(b uint64) float64 { return round3(float64(b) / float64(n) / window.Seconds()) }
	return &RealResult{
		Nodes: n, Published: len(r.invs),
		AllNodes: r.all.summary(), AllNodesEarly: r.allHalf[0].summary(), AllNodesLate: r.allHalf[1].summary(), Replica: r.replica.summary(), FirstHop: r.firstHop.summary(), NeverDelivered: len(r.invs) - r.complete,
		PushBytesPerNodeSec: per(after.push - before.push), AEBytesPerNodeSec: per(after.ae - before.ae),
		WindowSeconds: round3(window.Seconds()), StartupSeconds: round3(startup.Seconds()),
		LoadBefore: load0, LoadAfter: loadAverage(), Rejoins: rejoins,
		SendDropped: after.sd - before.sd, SendFailed: after.sf - before.sf, InboundDropped: after.ind - before.ind,
		Pulls: after.pulls - before.pulls, PullRetries: after.retries - before.retries,
		PullsAbandoned: after.abandoned - before.abandoned,
		GOMAXPROCS:     runtime.GOMAXPROCS(0), CPUSeconds: round3(cpu.Seconds()), Messages: msgs,
		GCCycles: gcN, GCPauseMs: ms(gcTotal), GCMaxPauseMs: ms(gcMax),
		IdleSeconds: round3(idleSecs), BackgroundCPUs: round3(background), OtherCPUs: other, CPUPerMessageMs: perMsg,
	}, nil
}

// realRun is one RunReal: the agents, the publications and what the
// watches saw.
type realRun struct {
	sc      *Scenario
	pop     *population
	invs    []involvement
	at      []time.Duration
	keys    []locator.LookupKey
	agents  []*federation.Agent
	holders []*locator.Holder

	// mu guards what the watch goroutines record.
	mu       sync.Mutex
	meta     map[locator.ID]*arrivals
	replica  hist
	all      hist
	allHalf  [2]hist
	firstHop hist
	complete int
}

// arrivals follows one published entry to the replicas.
type arrivals struct {
	pub    time.Time
	index  int // in the schedule
	origin int
	reach  int
	// away counts arrivals at nodes other than the origin.
	away int
}

func (r *realRun) shutdown() {
	for _, a := range r.agents {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.Shutdown(sctx)
		cancel()
	}
}

// protocolConfig is the engine configuration the simulation of sc uses.
func protocolConfig(sc *Scenario) protocol.Config {
	pcfg := protocol.DefaultConfig()
	pcfg.Fanout = sc.Protocol.Fanout
	pcfg.PushInterval = sc.Protocol.PushInterval.D()
	pcfg.AntiEntropyInterval = sc.Protocol.AntiEntropyInterval.D()
	if sc.Protocol.MaxMessageSize != 0 {
		pcfg.MaxMessageSize = sc.Protocol.MaxMessageSize
	}
	if sc.Protocol.MaxPushQueue != 0 {
		pcfg.MaxPushQueue = sc.Protocol.MaxPushQueue
	}
	if sc.Protocol.MaxHops != 0 {
		pcfg.MaxHops = sc.Protocol.MaxHops
	}
	if sc.Protocol.StampThreshold != 0 {
		pcfg.StampThreshold = sc.Protocol.StampThreshold
	}
	pcfg.RelayFanout = sc.Protocol.RelayFanout
	pcfg.MaxSendRate = sc.Protocol.MaxSendRate
	return pcfg
}

// startAgents enrols, starts and joins the N agents.
func (r *realRun) startAgents(ctx context.Context, logger *slog.Logger) error {
	sc, n := r.sc, r.sc.Nodes
	auth, err := federation.GenerateAuthority()
	if err != nil {
		return err
	}
	gossipKey := derive("gossip-key", sc.Seed, 0, 32)
	pcfg := protocolConfig(sc)
	now := time.Now()
	r.holders = make([]*locator.Holder, n)
	for i := range n {
		id := fmt.Sprintf("node-%05d", i)
		priv := ed25519.NewKeyFromSeed(derive("node-key", sc.Seed, uint64(i), ed25519.SeedSize))
		sd, err := auth.Enrol(federation.Descriptor{
			NodeID: id, Agency: "Synthetic agency " + id, Category: r.pop.kinds[i],
			Purposes: []string{"safeguarding"}, PublicKey: priv.Public().(ed25519.PublicKey),
			NotBefore: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour), Serial: uint64(i + 1),
		})
		if err != nil {
			return fmt.Errorf("sim: enrol %s: %w", id, err)
		}
		cfg := federation.DefaultConfig()
		cfg.GossipBindAddr, cfg.PeerBindAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.AuthorityKey = auth.PublicKey()
		cfg.Credentials = &federation.Credentials{Descriptor: sd, PrivateKey: priv}
		cfg.GossipKeys = [][]byte{gossipKey}
		cfg.Protocol = pcfg
		cfg.Policy = locator.DefaultPolicy()
		cfg.Policy.DigestDepth = sc.DigestDepth
		cfg.Policy.WatchBuffer = len(r.invs) + 16
		cfg.Logger = logger
		a, err := federation.NewAgent(cfg)
		if err != nil {
			return fmt.Errorf("sim: agent %s: %w", id, err)
		}
		if err := a.Start(ctx); err != nil {
			return fmt.Errorf("sim: start %s: %w", id, err)
		}
		r.agents = append(r.agents, a)
		var secret [32]byte
		copy(secret[:], derive("holder-secret", sc.Seed, uint64(i), 32))
		if r.holders[i], err = locator.NewHolder(id, priv, secret); err != nil {
			return err
		}
		if i > 0 {
			// Join through up to three earlier nodes, as a production
			// node is given several seeds.
			seeds := []string{r.agents[0].GossipAddr()}
			for _, j := range []int{i / 2, i - 1} {
				if j > 0 {
					seeds = append(seeds, r.agents[j].GossipAddr())
				}
			}
			if _, err := a.Join(seeds); err != nil {
				return fmt.Errorf("sim: join %s: %w", id, err)
			}
		}
	}
	return nil
}

func aliveCount(a *federation.Agent) int {
	alive := 0
	for _, m := range a.Members() {
		if m.Alive {
			alive++
		}
	}
	return alive
}

// waitMesh waits until every agent sees every other alive, re-joining
// those that still miss peers every few seconds from 10 s on (memberlist
// heals this itself by push/pull, every 30 s); it returns the re-joins.
func (r *realRun) waitMesh(ctx context.Context, start time.Time) (int, error) {
	n := len(r.agents)
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*200*time.Millisecond)
	rejoinAt := time.Since(start) + 10*time.Second
	rejoins := 0
	for {
		least := n
		for _, a := range r.agents {
			least = min(least, aliveCount(a))
		}
		if least >= n-1 {
			return rejoins, nil
		}
		if time.Since(start) > rejoinAt {
			rejoinAt = time.Since(start) + 5*time.Second
			for i, a := range r.agents {
				if aliveCount(a) < n-1 {
					rejoins++
					_, _ = a.Join([]string{r.agents[(i+1)%n].GossipAddr(), r.agents[(i+n/2)%n].GossipAddr()})
				}
			}
		}
		if time.Now().After(deadline) {
			return rejoins, fmt.Errorf("sim: real nodes did not all see each other within %v (one sees only %d of %d peers)",
				time.Until(deadline)+time.Since(start), least, n-1)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return rejoins, err
		}
	}
}

// watch starts one goroutine per replica recording the entries' arrivals;
// the function it returns stops them and waits for them.
func (r *realRun) watch() func() {
	n := len(r.agents)
	r.meta = make(map[locator.ID]*arrivals, len(r.invs))
	var wg sync.WaitGroup
	var watches []*locator.Watch
	for i, a := range r.agents {
		w := a.Store().Watch(r.keys...)
		watches = append(watches, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range w.C {
				t := time.Now()
				r.mu.Lock()
				if st := r.meta[e.ID()]; st != nil {
					d := t.Sub(st.pub)
					if i != st.origin {
						r.replica.add(d)
						if st.away == 0 {
							r.firstHop.add(d)
						}
						st.away++
					}
					st.reach++
					if st.reach == n {
						r.all.add(d)
						r.allHalf[min(2*st.index/len(r.invs), 1)].add(d)
						r.complete++
					}
				}
				r.mu.Unlock()
			}
		}()
	}
	return func() {
		for _, w := range watches {
			w.Close()
		}
		wg.Wait()
	}
}

// realTotals sums the agents' counters.
type realTotals struct{ push, ae, sd, sf, ind, pulls, retries, abandoned, msgs uint64 }

func (r *realRun) totals(ctx context.Context) (t realTotals, err error) {
	for _, a := range r.agents {
		st, err := a.Stats(ctx)
		if err != nil {
			return t, err
		}
		t.push += st.Protocol.Push.BytesSent
		t.ae += st.Protocol.AntiEntropy.BytesSent
		t.sd += st.SendDropped
		t.sf += st.SendFailed
		t.ind += st.InboundDropped
		t.pulls += st.Protocol.Pulls
		t.retries += st.Protocol.PullRetries
		t.abandoned += st.Protocol.PullsAbandoned
		t.msgs += st.Protocol.Push.MsgsReceived + st.Protocol.AntiEntropy.MsgsReceived
	}
	return t, nil
}

// publish publishes the schedule in real time, relative to its first
// publication at t0.
func (r *realRun) publish(ctx context.Context, t0 time.Time) error {
	for i, inv := range r.invs {
		if err := sleepCtx(ctx, time.Until(t0.Add(r.at[i]-r.at[0]))); err != nil {
			return err
		}
		pnow := time.Now()
		e, err := r.holders[inv.node].Publish(r.keys[i], sealKey(r.sc.Seed, inv.person), r.pop.kinds[inv.node], 1, pnow, pnow.Add(2*365*24*time.Hour))
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.meta[e.ID()] = &arrivals{pub: pnow, origin: int(inv.node), index: i}
		r.mu.Unlock()
		if _, err := r.agents[inv.node].Publish(ctx, e); err != nil {
			return fmt.Errorf("sim: publish: %w", err)
		}
	}
	return nil
}

// waitComplete waits until every replica holds every entry, or until end.
func (r *realRun) waitComplete(ctx context.Context, end time.Time) error {
	for {
		r.mu.Lock()
		c := r.complete
		r.mu.Unlock()
		if c == len(r.invs) || time.Now().After(end) {
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// CompareReal runs sc at nodes both ways — on real agents and simulated —
// with no faults, and compares time-to-visibility and bytes. The real
// agents run first: on loopback a real message costs the agents'
// processing, not the wire, on processors every agent shares, so the
// judged simulation puts every received message through a shared CPU
// pool calibrated from the real run's CPU time (see calibrateQueue). The
// first-hop latency calibrations (see calibrate) are reported beside it,
// not judged. tolerance is the agreement asked of the all-nodes p50 and
// p90 (|sim/real − 1| ≤ tolerance); see Comparison.
func CompareReal(ctx context.Context, sc *Scenario, nodes int, tolerance float64, logw io.Writer) (*Comparison, error) {
	c := realScenario(sc, nodes)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	// The loopback simulation, uncalibrated, for reference: it is what the
	// wire alone would give.
	loop, err := Run(ctx, c)
	if err != nil {
		return nil, err
	}
	real, err := RunReal(ctx, c, logw)
	if err != nil {
		return nil, err
	}
	q, model := calibrateQueue(c, real)
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("sim: shared-CPU scenario: %w", err)
	}
	rep, err := Run(ctx, q)
	if err != nil {
		return nil, err
	}
	// Not judged: the first-hop calibrations (independent latencies).
	cal, how := calibrate(c, real.FirstHop)
	if err := cal.Validate(); err != nil {
		return nil, fmt.Errorf("sim: calibrated scenario: %w", err)
	}
	fh, err := Run(ctx, cal)
	if err != nil {
		return nil, err
	}
	mo := *cal
	mo.Network.Latency.Sigma = c.Network.Latency.Sigma
	medOnly, err := Run(ctx, &mo)
	if err != nil {
		return nil, err
	}
	sim := RealResult{
		Nodes: nodes, Published: rep.Entries.Published, AllNodes: rep.Visibility.AllNodes, Replica: rep.Visibility.Replica,
		NeverDelivered: rep.Visibility.NeverDelivered, PushBytesPerNodeSec: rep.Bandwidth.PushBytesPerNodeSec,
		AEBytesPerNodeSec: rep.Bandwidth.AEBytesPerNodeSec, WindowSeconds: rep.VirtualSecs,
		Pulls: rep.Engines.Pulls, PullRetries: rep.Engines.PullRetries, PullsAbandoned: rep.Engines.PullsAbandoned,
	}
	// The sim's bandwidth averages over the whole run, the real one over
	// its window from the first publication: compare push per entry and
	// anti-entropy per second.
	perEntry := func(r RealResult) float64 {
		return r.PushBytesPerNodeSec * r.WindowSeconds / math.Max(float64(r.Published), 1)
	}
	cmp := &Comparison{
		Scenario: c.Name, Nodes: nodes, Real: real, Sim: sim,
		RatioMean:          ratio(sim.AllNodes.Mean, real.AllNodes.Mean),
		RatioP50:           ratio(sim.AllNodes.P50, real.AllNodes.P50),
		RatioP90:           ratio(sim.AllNodes.P90, real.AllNodes.P90),
		RatioReplica50:     ratio(sim.Replica.P50, real.Replica.P50),
		RatioOver2s:        ratio(sim.AllNodes.Over2s, real.AllNodes.Over2s),
		RatioPushPerEntry:  ratio(perEntry(sim), perEntry(*real)),
		RatioAEPerSec:      ratio(sim.AEBytesPerNodeSec, real.AEBytesPerNodeSec),
		RatioPullsPerEntry: ratio(pullsPerEntry(sim), pullsPerEntry(*real)),
		Tolerance:          tolerance,
		LoopbackLatencyMs:  ms(c.Network.Latency.Median.D()), LoopbackP50: loop.Visibility.AllNodes.P50, LoopbackP90: loop.Visibility.AllNodes.P90,
		Model: model, QueueCPUs: q.Network.SharedCPUs, QueueServiceMs: ms(q.Network.ServiceTime.D()),
		QueueAvailableCPUs: queueAvailable(real), SimCPU: rep.CPU,
		CalibratedLatencyMs: ms(cal.Network.Latency.Median.D()), CalibratedSigma: cal.Network.Latency.Sigma, Calibration: how,
		FirstHopP50: fh.Visibility.AllNodes.P50, FirstHopP90: fh.Visibility.AllNodes.P90,
		MedianOnlyP50: medOnly.Visibility.AllNodes.P50, MedianOnlyP90: medOnly.Visibility.AllNodes.P90,
	}
	if real.GOMAXPROCS > 0 && real.WindowSeconds > 0 {
		cmp.RealUtilisation = round3(real.CPUSeconds / real.WindowSeconds / float64(real.GOMAXPROCS))
	}
	cmp.judge()
	return cmp, nil
}

// minAvailable is the least share of the processors calibrateQueue leaves
// the messages, however busy the machine was: below it the queue would
// saturate on a measurement error.
const minAvailable = 0.1

// queueAvailable is the processors the real run left the agents' messages:
// GOMAXPROCS less the agents' background rate and the other processes'
// rate (when known), at least minAvailable of GOMAXPROCS.
func queueAvailable(real *RealResult) float64 {
	c := float64(real.GOMAXPROCS)
	a := c - real.BackgroundCPUs - max(real.OtherCPUs, 0)
	return round3(max(a, minAvailable*c))
}

// calibrateQueue returns c with a shared CPU pool calibrated from the real
// run, and says so in words. This is the judged model, chosen and written
// down (docs/BENCHMARKS.md) before its first comparison was run:
//
//   - the network is c's (loopback latency, no loss);
//   - every received message, of every kind, is one job on a pool of
//     QueueCPUs = the real run's GOMAXPROCS processors shared by all the
//     nodes, served first come first served by arrival;
//   - a job's service time is the real CPU per message (CPUPerMessageMs:
//     the process's CPU over the window less the agents' idle background
//     rate times the window, over the messages received — both ends of a
//     message, engine, HTTP, TLS, JSON, store and the garbage collector
//     they cause) stretched by GOMAXPROCS / available processors, where
//     available is GOMAXPROCS less the background and the other
//     processes' CPU rates (queueAvailable): background work and other
//     processes come in slices much shorter than a message, so a message
//     on a processor proceeds at the share they leave (processor
//     sharing).
//
// Nothing is fitted: every input is measured in the real run before the
// simulation runs, and the simulation's times are not consulted. With no
// CPU figures (no GOMAXPROCS or no messages) c is returned as is, and the
// judged simulation is the uncalibrated loopback one.
func calibrateQueue(c *Scenario, real *RealResult) (*Scenario, string) {
	if real.GOMAXPROCS < 1 || real.Messages == 0 || real.CPUPerMessageMs <= 0 {
		return c, "none: no CPU figures from the real agents; loopback latency, processing free"
	}
	avail := queueAvailable(real)
	cpus := float64(real.GOMAXPROCS)
	service := time.Duration(real.CPUPerMessageMs * cpus / avail * float64(time.Millisecond))
	q := *c
	q.Network.SharedCPUs = real.GOMAXPROCS
	q.Network.ServiceTime = Duration(service)
	other := "unknown"
	if real.OtherCPUs >= 0 {
		other = fmt.Sprintf("%.2f", real.OtherCPUs)
	}
	return &q, fmt.Sprintf("shared-CPU queue: loopback latency, every received message a job of %v on %d shared processors, first come first served "+
		"(real: %.1f s CPU over %.1f s for %d messages, less background %.2f CPUs measured over %.1f s idle = %.3f ms per message; "+
		"other processes %s CPUs; %.2f of %d processors left for messages)",
		service.Round(time.Microsecond), real.GOMAXPROCS, real.CPUSeconds, real.WindowSeconds, real.Messages,
		real.BackgroundCPUs, real.IdleSeconds, real.CPUPerMessageMs, other, avail, real.GOMAXPROCS)
}

// calibrate returns c with its one-way latency distribution taken from the
// real agents' measured first hop, and says where the figures came from.
// The first hop (publication to the first other node's store) is one
// message carrying the entry, the eager push, so its distribution is the
// real per-message cost — wire, engine, HTTP, mutual TLS, JSON and store on
// a CPU the other agents share — which the loopback latency leaves out. The
// lognormal's median is the first hop's p50, its σ the one that gives the
// first hop's p90 (ln(p90/p50)/z₀.₉, within 0..5; the loopback σ when the
// p90 is no higher), its maximum the first hop's maximum and its minimum
// the loopback minimum. Under load the real cost is heavy-tailed (a p90
// tens of times the p50), and time to every node, the slowest of many
// paths, follows that tail. These are measured, not fitted: the
// simulation's times are not consulted. They are biased low, if anything
// (the first of the origin's fan-out arrivals). With no first-hop figure c
// is returned as is.
func calibrate(c *Scenario, firstHop Percentiles) (*Scenario, string) {
	l := c.Network.Latency
	if firstHop.Count == 0 || firstHop.P50 <= 0 {
		return c, fmt.Sprintf("none: no first-hop figure from the real agents; loopback latency median %v", l.Median.D())
	}
	msd := func(f float64) Duration { return Duration(time.Duration(f * float64(time.Millisecond))) }
	const z90 = 1.2815515655446004 // the standard normal's 90th percentile
	sigma := l.Sigma
	if firstHop.P90 > firstHop.P50 {
		sigma = min(math.Log(firstHop.P90/firstHop.P50)/z90, 5)
	}
	sigma = math.Round(sigma*1000) / 1000
	cal := *c
	cal.Network.Latency = Latency{Dist: "lognormal", Median: msd(firstHop.P50), Sigma: sigma,
		Min: min(l.Min, msd(firstHop.P50)), Max: max(msd(firstHop.Max), msd(firstHop.P50))}
	nl := cal.Network.Latency
	return &cal, fmt.Sprintf("one-way latency lognormal median %v σ %.2f max %v, from the real agents' first hop (publication to the first other node's store, %d entries: p50 %.1f ms, p90 %.1f ms, max %.1f ms); loopback was median %v σ %.2f",
		nl.Median.D(), nl.Sigma, nl.Max.D(), firstHop.Count, firstHop.P50, firstHop.P90, firstHop.Max, l.Median.D(), l.Sigma)
}

// pullsPerEntry is r's pulls per node per published entry.
func pullsPerEntry(r RealResult) float64 {
	return float64(r.Pulls) / math.Max(float64(r.Published*r.Nodes), 1)
}

// judge sets c.Agree: the all-nodes p50 and p90 ratios are both within
// c.Tolerance of 1 (a ratio of 0 means a side had no figure, and never
// agrees). The ratios are rounded to three decimals, so the bound is
// compared with a little slack: 0.65 is within ±35 %.
func (c *Comparison) judge() {
	c.Agree = c.ratioOK(c.RatioP50) && c.ratioOK(c.RatioP90) && c.deliveredOK()
}

// deliveredShare is the fraction of r's published entries that reached
// every node (1 when nothing was published).
func deliveredShare(r RealResult) float64 {
	if r.Published <= 0 {
		return 1
	}
	return float64(r.Published-r.NeverDelivered) / float64(r.Published)
}

// deliveredOK: the real agents delivered at least (1 − Tolerance) of the
// share the simulation delivered.
func (c *Comparison) deliveredOK() bool {
	if c.Real == nil {
		return false
	}
	return deliveredShare(*c.Real) >= (1-c.Tolerance)*deliveredShare(c.Sim)-1e-9
}

func (c *Comparison) ratioOK(r float64) bool {
	return r > 0 && math.Abs(r-1) <= c.Tolerance+1e-9
}

// verdict is the comparison's outcome in one line: AGREE, or DISAGREE
// with the ratios that missed the tolerance.
func (c *Comparison) verdict() string {
	lo, hi := 1-c.Tolerance, 1+c.Tolerance
	if c.Agree {
		return fmt.Sprintf("verdict: AGREE (all-nodes p50 ratio %.2f, p90 ratio %.2f, both within %.2f..%.2f)", c.RatioP50, c.RatioP90, lo, hi)
	}
	var miss []string
	for _, x := range []struct {
		name string
		r    float64
	}{{"p50", c.RatioP50}, {"p90", c.RatioP90}} {
		switch {
		case x.r <= 0:
			miss = append(miss, x.name+" has no figure on one side")
		case !c.ratioOK(x.r):
			miss = append(miss, fmt.Sprintf("%s ratio %.2f outside %.2f..%.2f", x.name, x.r, lo, hi))
		}
	}
	if !c.deliveredOK() && c.Real != nil {
		miss = append(miss, fmt.Sprintf("real agents brought %.1f%% of entries to every node, the simulation %.1f%%",
			100*deliveredShare(*c.Real), 100*deliveredShare(c.Sim)))
	}
	return "verdict: DISAGREE (" + strings.Join(miss, "; ") + ")"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

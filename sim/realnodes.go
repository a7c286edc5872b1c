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
	"strings"
	"sync"
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
	AllNodes       Percentiles `json:"all_nodes"`
	Replica        Percentiles `json:"replica"`
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
	// LoadBefore and LoadAfter are /proc/loadavg's 1-minute figure: real
	// nodes share the machine's cores, and a busy machine slows them
	// where the simulation does not notice (-1: unknown).
	LoadBefore float64 `json:"load_average_before"`
	LoadAfter  float64 `json:"load_average_after"`
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
	n := sc.Nodes
	if logw == nil {
		logw = io.Discard
	}
	load0 := loadAverage()
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := time.Now()
	auth, err := federation.GenerateAuthority()
	if err != nil {
		return nil, err
	}
	gossipKey := derive("gossip-key", sc.Seed, 0, 32)
	pop := newPopulation(sc)
	invs, at := schedule(sc, pop)
	keys := make([]locator.LookupKey, len(invs))
	for i, inv := range invs {
		keys[i] = lookupKey(sc.Seed, inv.person)
	}
	now := time.Now()
	agents := make([]*federation.Agent, 0, n)
	holders := make([]*locator.Holder, n)
	defer func() {
		for _, a := range agents {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = a.Shutdown(sctx)
			cancel()
		}
	}()
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
	for i := range n {
		id := fmt.Sprintf("node-%05d", i)
		priv := ed25519.NewKeyFromSeed(derive("node-key", sc.Seed, uint64(i), ed25519.SeedSize))
		sd, err := auth.Enrol(federation.Descriptor{
			NodeID: id, Agency: "Synthetic agency " + id, Category: pop.kinds[i],
			Purposes: []string{"safeguarding"}, PublicKey: priv.Public().(ed25519.PublicKey),
			NotBefore: now.Add(-time.Hour), Expires: now.Add(24 * time.Hour), Serial: uint64(i + 1),
		})
		if err != nil {
			return nil, fmt.Errorf("sim: enrol %s: %w", id, err)
		}
		cfg := federation.DefaultConfig()
		cfg.GossipBindAddr, cfg.PeerBindAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.AuthorityKey = auth.PublicKey()
		cfg.Credentials = &federation.Credentials{Descriptor: sd, PrivateKey: priv}
		cfg.GossipKeys = [][]byte{gossipKey}
		cfg.Protocol = pcfg
		cfg.Policy = locator.DefaultPolicy()
		cfg.Policy.DigestDepth = sc.DigestDepth
		cfg.Policy.WatchBuffer = len(invs) + 16
		cfg.Logger = logger
		a, err := federation.NewAgent(cfg)
		if err != nil {
			return nil, fmt.Errorf("sim: agent %s: %w", id, err)
		}
		if err := a.Start(ctx); err != nil {
			return nil, fmt.Errorf("sim: start %s: %w", id, err)
		}
		agents = append(agents, a)
		var secret [32]byte
		copy(secret[:], derive("holder-secret", sc.Seed, uint64(i), 32))
		if holders[i], err = locator.NewHolder(id, priv, secret); err != nil {
			return nil, err
		}
		if i > 0 {
			// Join through up to three earlier nodes, as a production
			// node is given several seeds.
			seeds := []string{agents[0].GossipAddr()}
			for _, j := range []int{i / 2, i - 1} {
				if j > 0 {
					seeds = append(seeds, agents[j].GossipAddr())
				}
			}
			if _, err := a.Join(seeds); err != nil {
				return nil, fmt.Errorf("sim: join %s: %w", id, err)
			}
		}
	}
	// Wait until every agent sees every other alive.
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*200*time.Millisecond)
	rejoinAt := time.Since(start) + 10*time.Second
	rejoins := 0
	for {
		least := n
		for _, a := range agents {
			alive := 0
			for _, m := range a.Members() {
				if m.Alive {
					alive++
				}
			}
			least = min(least, alive)
		}
		if least >= n-1 {
			break
		}
		// Every few seconds, re-join the nodes that still miss peers
		// (memberlist heals this itself by push/pull, every 30 s).
		if time.Since(start) > rejoinAt {
			rejoinAt = time.Since(start) + 5*time.Second
			for i, a := range agents {
				alive := 0
				for _, m := range a.Members() {
					if m.Alive {
						alive++
					}
				}
				if alive < n-1 {
					rejoins++
					_, _ = a.Join([]string{agents[(i+1)%n].GossipAddr(), agents[(i+n/2)%n].GossipAddr()})
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("sim: real nodes did not all see each other within %v (one sees only %d of %d peers)",
				time.Until(deadline)+time.Since(start), least, n-1)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	startup := time.Since(start)

	// Watch every replica for the entries to come; the watch goroutines
	// record arrivals under mu.
	type rstate struct {
		pub    time.Time
		origin int
		reach  int
	}
	var (
		mu       sync.Mutex
		meta     = make(map[locator.ID]*rstate, len(invs))
		replica  hist
		all      hist
		complete int
	)
	var wg sync.WaitGroup
	var watches []*locator.Watch
	for i, a := range agents {
		w := a.Store().Watch(keys...)
		watches = append(watches, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range w.C {
				t := time.Now()
				mu.Lock()
				if st := meta[e.ID()]; st != nil {
					d := t.Sub(st.pub)
					if i != st.origin {
						replica.add(d)
					}
					st.reach++
					if st.reach == n {
						all.add(d)
						complete++
					}
				}
				mu.Unlock()
			}
		}()
	}
	defer func() {
		for _, w := range watches {
			w.Close()
		}
		wg.Wait()
	}()
	type totals struct{ push, ae, sd, sf, ind uint64 }
	statsAt := func() (t totals, err error) {
		for _, a := range agents {
			st, err := a.Stats(ctx)
			if err != nil {
				return t, err
			}
			t.push += st.Protocol.Push.BytesSent
			t.ae += st.Protocol.AntiEntropy.BytesSent
			t.sd += st.SendDropped
			t.sf += st.SendFailed
			t.ind += st.InboundDropped
		}
		return t, nil
	}
	t0s, err := statsAt()
	if err != nil {
		return nil, err
	}

	// Publish on the simulation's schedule (relative to the first).
	t0 := time.Now()
	for i, inv := range invs {
		if err := sleepCtx(ctx, time.Until(t0.Add(at[i]-at[0]))); err != nil {
			return nil, err
		}
		pnow := time.Now()
		e, err := holders[inv.node].Publish(keys[i], sealKey(sc.Seed, inv.person), pop.kinds[inv.node], 1, pnow, pnow.Add(2*365*24*time.Hour))
		if err != nil {
			return nil, err
		}
		mu.Lock()
		meta[e.ID()] = &rstate{pub: pnow, origin: int(inv.node)}
		mu.Unlock()
		if _, err := agents[inv.node].Publish(ctx, e); err != nil {
			return nil, fmt.Errorf("sim: publish: %w", err)
		}
	}
	// Wait for every replica to hold every entry, as long as the
	// scenario's run would have lasted.
	end := t0.Add(sc.Duration.D() - at[0])
	for {
		mu.Lock()
		c := complete
		mu.Unlock()
		if c == len(invs) || time.Now().After(end) {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	window := time.Since(t0)
	t1s, err := statsAt()
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	per := func(b uint64) float64 { return round3(float64(b) / float64(n) / window.Seconds()) }
	return &RealResult{
		Nodes: n, Published: len(invs),
		AllNodes: all.summary(), Replica: replica.summary(), NeverDelivered: len(invs) - complete,
		PushBytesPerNodeSec: per(t1s.push - t0s.push), AEBytesPerNodeSec: per(t1s.ae - t0s.ae),
		WindowSeconds: round3(window.Seconds()), StartupSeconds: round3(startup.Seconds()),
		LoadBefore: load0, LoadAfter: loadAverage(), Rejoins: rejoins,
		SendDropped: t1s.sd - t0s.sd, SendFailed: t1s.sf - t0s.sf, InboundDropped: t1s.ind - t0s.ind,
	}, nil
}

// CompareReal runs sc at nodes both ways — simulated and on real agents —
// with loopback latency and no faults, and compares time-to-visibility and
// bytes. tolerance is the agreement asked of the all-nodes p50 and p90
// (|sim/real − 1| ≤ tolerance); see Comparison.
func CompareReal(ctx context.Context, sc *Scenario, nodes int, tolerance float64, logw io.Writer) (*Comparison, error) {
	c := realScenario(sc, nodes)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rep, err := Run(ctx, c)
	if err != nil {
		return nil, err
	}
	real, err := RunReal(ctx, c, logw)
	if err != nil {
		return nil, err
	}
	sim := RealResult{
		Nodes: nodes, Published: rep.Entries.Published, AllNodes: rep.Visibility.AllNodes, Replica: rep.Visibility.Replica,
		NeverDelivered: rep.Visibility.NeverDelivered, PushBytesPerNodeSec: rep.Bandwidth.PushBytesPerNodeSec,
		AEBytesPerNodeSec: rep.Bandwidth.AEBytesPerNodeSec, WindowSeconds: rep.VirtualSecs,
	}
	// The sim's bandwidth averages over the whole run, the real one over
	// its window from the first publication: compare push per entry and
	// anti-entropy per second.
	perEntry := func(r RealResult) float64 {
		return r.PushBytesPerNodeSec * r.WindowSeconds / math.Max(float64(r.Published), 1)
	}
	cmp := &Comparison{
		Scenario: c.Name, Nodes: nodes, Real: real, Sim: sim,
		RatioMean:         ratio(sim.AllNodes.Mean, real.AllNodes.Mean),
		RatioP50:          ratio(sim.AllNodes.P50, real.AllNodes.P50),
		RatioP90:          ratio(sim.AllNodes.P90, real.AllNodes.P90),
		RatioReplica50:    ratio(sim.Replica.P50, real.Replica.P50),
		RatioOver2s:       ratio(sim.AllNodes.Over2s, real.AllNodes.Over2s),
		RatioPushPerEntry: ratio(perEntry(sim), perEntry(*real)),
		RatioAEPerSec:     ratio(sim.AEBytesPerNodeSec, real.AEBytesPerNodeSec),
		Tolerance:         tolerance,
	}
	cmp.judge()
	return cmp, nil
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

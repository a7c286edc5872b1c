package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/signpost-federation/signpost/sim/internal/simnet"
)

// ReportSchema names the version of the report layout (see doc.go).
const ReportSchema = "signpost-sim-report/v1"

// Report is the outcome of a run. Everything except Wall is a function of
// the scenario alone: the same scenario and seed give a byte-identical
// report once Wall is removed.
type Report struct {
	Schema   string    `json:"schema"`
	Scenario *Scenario `json:"scenario"`
	// Partial is set when the run was stopped early (PartialReason says
	// where and why); the figures then cover the virtual time reached.
	Partial       bool    `json:"partial"`
	PartialReason string  `json:"partial_reason,omitempty"`
	VirtualSecs   float64 `json:"virtual_seconds"`
	Events        uint64  `json:"events"`

	Entries        EntriesReport        `json:"entries"`
	Visibility     VisibilityReport     `json:"visibility"`
	Bandwidth      BandwidthReport      `json:"bandwidth"`
	Reconciliation ReconciliationReport `json:"reconciliation"`
	Recall         RecallReport         `json:"recall"`
	Heals          []HealReport         `json:"heals,omitempty"`
	Convergence    ConvergenceReport    `json:"convergence"`
	Theory         TheoryReport         `json:"theory"`
	Network        NetworkReport        `json:"network"`
	// CPU is the shared processors' queue, when the scenario has one
	// (network.shared_cpus; the real-node comparison).
	CPU     *CPUReport   `json:"cpu_pool,omitempty"`
	Engines EngineTotals `json:"engines"`
	Faults  []Fault      `json:"faults,omitempty"`
	Series  []Sample     `json:"series"`
	// Wall holds the only fields that depend on the machine and the
	// moment: wall time, memory, speed. Compare reports without it.
	Wall *Wall `json:"wall,omitempty"`
}

// EntriesReport counts publications.
type EntriesReport struct {
	Published int `json:"published"`
	Steady    int `json:"steady"`
	Bulk      int `json:"bulk"`
	// SkippedDown counts publications due at an agency that was down.
	SkippedDown int `json:"skipped_agency_down"`
	// Exhausted is set when the population ran out of involvements
	// before the publication window ended.
	Exhausted bool `json:"population_exhausted"`
	People    int  `json:"people"`
}

// VisibilityReport is time-to-visibility.
type VisibilityReport struct {
	// AllNodes: per entry, from publication until every up node holds it.
	AllNodes Percentiles `json:"all_nodes"`
	// Replica: per (entry, receiving node), from publication to arrival.
	Replica Percentiles `json:"replica"`
	// NeverDelivered counts entries that had not reached every up node by
	// the end of the run, NeverFraction as a fraction of Published.
	NeverDelivered int     `json:"never_delivered"`
	NeverFraction  float64 `json:"never_delivered_fraction"`
	// ViaPush and ViaAntiEntropy split the replica deliveries by the
	// class of the message that brought them.
	ViaPush        uint64 `json:"replica_deliveries_via_push"`
	ViaAntiEntropy uint64 `json:"replica_deliveries_via_anti_entropy"`
}

// BandwidthReport is traffic per node per virtual second, averaged over
// the run and the nodes (sent bytes; received is equal but for losses).
type BandwidthReport struct {
	PushBytesPerNodeSec float64 `json:"push_bytes_per_node_per_second"`
	AEBytesPerNodeSec   float64 `json:"anti_entropy_bytes_per_node_per_second"`
	RecvBytesPerNodeSec float64 `json:"received_bytes_per_node_per_second"`
	RecvPushPerNodeSec  float64 `json:"received_push_bytes_per_node_per_second"`
	RecvAEPerNodeSec    float64 `json:"received_anti_entropy_bytes_per_node_per_second"`
	// MaxNodeSentPerSec is the busiest node's average.
	MaxNodeSentPerSec float64 `json:"max_node_sent_bytes_per_second"`
	PushBytes         uint64  `json:"push_bytes_total"`
	AEBytes           uint64  `json:"anti_entropy_bytes_total"`
	// MemberlistBroadcastPerNodeSec is what the same publications would
	// cost each node on memberlist's broadcast queue (each node transmits
	// each message RetransmitMult·⌈log10(N+1)⌉ times, RetransmitMult 4),
	// and RatioToMemberlist our total over it.
	MemberlistBroadcastPerNodeSec float64 `json:"memberlist_broadcast_bytes_per_node_per_second"`
	RatioToMemberlist             float64 `json:"ratio_to_memberlist_broadcast"`
}

// ReconciliationReport relates anti-entropy bytes to the differences they
// repaired. BytesPerEntry divides anti-entropy's bytes, a good part of
// which is a fixed cost (the digest walk every interval), by the replicas
// anti-entropy itself delivered: when push and pulls leave it little to
// repair, the ratio rises although anti-entropy costs less — compare
// Bandwidth.AEBytesPerNodeSec, not this, between protocols.
type ReconciliationReport struct {
	Sessions uint64 `json:"sessions"`
	// DifferingEntries is the replica deliveries made by anti-entropy.
	DifferingEntries uint64  `json:"differing_entries_repaired"`
	BytesPerEntry    float64 `json:"bytes_per_differing_entry"`
	// EntrySize is the mean encoded size of an entry, for scale.
	EntrySize float64 `json:"entry_size_bytes"`
}

// RecallReport is the fraction of true holders that lookups returned
// (true holders: entries of that person published at least 5 s before the
// lookup). Fields are -1 when no probe fell in their class of window.
type RecallReport struct {
	Probes        uint64  `json:"probes"`
	Mean          float64 `json:"mean"`
	DuringFaults  float64 `json:"mean_during_faults"`
	OutsideFaults float64 `json:"mean_outside_faults"`
	Min           float64 `json:"min_window_mean"`
}

// HealReport is what followed the end of one partition.
type HealReport struct {
	Partition int     `json:"partition"`
	HealedAt  float64 `json:"healed_at_s"`
	// EntriesBefore were published before the heal; ConvergedAfter is
	// how long after the heal every up node held all of them (-1: not
	// within the run). Each heal is tracked on its own: when partitions
	// overlap, an earlier heal's entries may still wait for a later one
	// (its ConvergedAfter then reaches past the later heal).
	EntriesBefore  int     `json:"entries_before_heal"`
	ConvergedAfter float64 `json:"converged_after_s"`
	// RecallFullAfter: from the heal to the start of the first sample
	// window from which every later window's recall is 100 % (-1: never).
	RecallFullAfter float64 `json:"recall_full_after_s"`
}

// ConvergenceReport compares the replicas at the end of the run.
type ConvergenceReport struct {
	UpNodes int `json:"up_nodes"`
	// DistinctDigests counts different digest roots among up nodes: 1
	// means every replica holds the same set.
	DistinctDigests int  `json:"distinct_digests"`
	Identical       bool `json:"replicas_identical"`
	MinEntries      int  `json:"min_entries"`
	MaxEntries      int  `json:"max_entries"`
}

// TheoryReport sets the measurement beside epidemic theory.
type TheoryReport struct {
	Fanout int `json:"fanout"`
	// RoundsLogN is log N / log R (R the relay fan-out); SerfRounds the rounds Serf's
	// published convergence model (the logistic curve of its convergence
	// simulator, 1/(1+(N+1)e^(−f(1−loss)x))) needs to reach 99.99 % of the
	// nodes, SerfSeconds those rounds × the push interval (Serf's gossip
	// interval, 200 ms by default in both).
	RoundsLogN  float64 `json:"rounds_log_n_over_log_relay_fanout"`
	SerfRounds  int     `json:"serf_model_rounds"`
	SerfSeconds float64 `json:"serf_model_seconds"`
	// RoundTime is our effective hop time: half a push interval of
	// queueing plus three median latencies (Have, Want, Entries).
	RoundTimeMs float64 `json:"round_time_ms"`
	// MeasuredRounds is the measured all-nodes p50 in round times.
	MeasuredRoundsP50 float64 `json:"measured_rounds_p50"`
	// RatioP50ToSerf and RatioP99ToSerf: measured all-nodes p50 and p99
	// over SerfSeconds.
	RatioP50ToSerf float64 `json:"ratio_p50_to_serf_model"`
	RatioP99ToSerf float64 `json:"ratio_p99_to_serf_model"`
	// RelayFanout is the relay fan-out in effect (the scenario's, or the
	// protocol's adaptive ⌈ln N⌉+3, at least fanout). PushCoverage is the
	// infect-and-die prediction of the fraction one push cascade reaches
	// with it (1−π = e^(−R·π), ignoring MaxHops); MeasuredPushShare the
	// share of replica deliveries that came by push.
	RelayFanout       int     `json:"relay_fanout"`
	PushCoverage      float64 `json:"push_coverage_predicted"`
	MeasuredPushShare float64 `json:"push_share_measured"`
}

// NetworkReport counts dropped messages by cause. LostMessages is a count
// of the network's random losses, which at a fixed loss probability
// follows the number of messages sent (SentMessages; LostFraction is
// their quotient, the loss rate the messages met): a protocol that sends
// more, smaller messages loses more of them without being less reliable.
// LostBytes is what the lost messages weighed.
type NetworkReport struct {
	SentMessages      uint64  `json:"sent_messages"`
	LostFraction      float64 `json:"lost_fraction"`
	LostBytes         uint64  `json:"lost_bytes"`
	LostMessages      uint64  `json:"lost_messages"`
	PartitionMessages uint64  `json:"partition_dropped_messages"`
	QueueDrops        uint64  `json:"queue_dropped_messages"`
	DownDrops         uint64  `json:"to_down_node_messages"`
}

// CPUReport describes the shared CPU pool over the run: every received
// message is a job on it (see Network.SharedCPUs).
type CPUReport struct {
	CPUs          int     `json:"cpus"`
	ServiceTimeMs float64 `json:"service_time_ms"`
	Jobs          uint64  `json:"jobs"`
	// Utilisation is the processors' busy time over their time in the run
	// (cpus × virtual seconds).
	Utilisation float64 `json:"utilisation"`
	// MeanWaitMs and MaxWaitMs are how long a message waited for a free
	// processor before its own service time: the queueing that correlates
	// the nodes' delays.
	MeanWaitMs float64 `json:"mean_wait_ms"`
	MaxWaitMs  float64 `json:"max_wait_ms"`
}

// EngineTotals sums the protocol engines' counters over the nodes
// (engines lost in crashes are not counted).
type EngineTotals struct {
	PushDropped     uint64 `json:"push_dropped"`
	BudgetExhausted uint64 `json:"budget_exhausted"`
	SendErrors      uint64 `json:"send_errors"`
	BadMessages     uint64 `json:"bad_messages"`
	EntriesRejected uint64 `json:"entries_rejected"`
	// Pull on announcement: versions asked for because a peer announced
	// them, further requests (a second announcer, or a retry after the
	// timeout), pulls given up to anti-entropy, and stamps not pulled at a
	// bound (protocol.Stats).
	Pulls          uint64 `json:"pulls"`
	PullRetries    uint64 `json:"pull_retries"`
	PullsAbandoned uint64 `json:"pulls_abandoned"`
	PullsRefused   uint64 `json:"pulls_refused"`
	// Reactions to membership: anti-entropy exchanges started because a
	// peer joined or came back, and stamps re-announced to such peers.
	RejoinExchanges uint64 `json:"rejoin_exchanges"`
	Reannounced     uint64 `json:"reannounced"`
}

// Fault is a window in which the scenario injected a fault.
type Fault struct {
	Kind  string  `json:"kind"`
	From  float64 `json:"from_s"`
	Until float64 `json:"until_s"`
	Label string  `json:"label"`
}

// Sample is one window of the time series.
type Sample struct {
	T         float64 `json:"t_s"`
	Published int     `json:"published"`
	// TTV percentiles (ms) of entries published in this window, to every
	// up node; Delivered how many of them did reach every up node.
	TTVP50    float64 `json:"ttv_p50_ms"`
	TTVP99    float64 `json:"ttv_p99_ms"`
	TTVMax    float64 `json:"ttv_max_ms"`
	Delivered uint64  `json:"delivered_all"`
	// Sent bytes per up node per second in this window, by class.
	PushBps float64 `json:"push_bytes_per_node_per_second"`
	AEBps   float64 `json:"anti_entropy_bytes_per_node_per_second"`
	// Recall is the mean recall of the probes in the window (-1: none).
	Recall  float64 `json:"recall"`
	UpNodes int     `json:"up_nodes"`
	Fault   bool    `json:"fault"`
}

// Wall holds the machine-dependent fields. They are what a planner
// extrapolates from: memory grows as HeapPerNode × nodes (plus ~80 B per
// node and entry), wall time as the report's Events / EventsPerSecond,
// where events grow a little faster than nodes × messages per node and the
// rate falls as the run outgrows the CPU caches (724 k/s at 1,000 nodes,
// 383 k/s at 10,000 in docs/BENCHMARKS.md). The event loop is one
// goroutine, so wall time, not memory, is what limits the size of a run.
type Wall struct {
	Seconds         float64 `json:"seconds"`
	SetupSeconds    float64 `json:"setup_seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	// HeapBytes is the process's live heap after the run (after a GC,
	// the simulation still held). HeapPerNode is the simulation's own
	// live heap divided by the nodes: the simulated node's whole
	// footprint (engine, store, its share of entries, queues and the
	// run's bookkeeping), measured as the live heap with the simulation
	// minus the live heap once it is dropped, so that whatever ran
	// earlier in the process does not change it.
	HeapBytes   uint64 `json:"heap_bytes"`
	HeapPerNode int64  `json:"heap_bytes_per_node"`
	SysBytes    uint64 `json:"sys_bytes"`
	GoVersion   string `json:"go_version"`
	GOOS        string `json:"goos"`
	GOARCH      string `json:"goarch"`
	CPUs        int    `json:"cpus"`
	// RealNodes is the real-node comparison, when one was run
	// (--compare-real): real time, so it belongs here.
	RealNodes *Comparison `json:"real_nodes,omitempty"`
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func secs(ns int64) float64 { return round3(float64(ns) / float64(time.Second)) }

func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return round3(a / b)
}

// serfModel returns the rounds Serf's published convergence model (the
// logistic curve of its website's convergence simulator) needs to reach
// 99.99 % of n nodes: the infected fraction after x rounds is
// 1 / (1 + (n+1)·e^(−f·(1−loss)·x)), counted in whole rounds, at most 100
// as in Serf's simulator.
func serfModel(n, fanout int, loss float64) int {
	rate := float64(fanout) * (1 - loss)
	for x := 0; x < 100; x++ {
		if 1/(1+float64(n+1)*math.Exp(-rate*float64(x))) >= 0.9999 {
			return x
		}
	}
	return 100
}

// pushCoverage solves 1 − π = e^(−f·π) for π by iteration.
func pushCoverage(f int) float64 {
	p := 1.0
	for range 200 {
		p = 1 - math.Exp(-float64(f)*p)
	}
	return round3(p)
}

func (s *simulation) report(partial string) *Report {
	sc := s.sc
	n := sc.Nodes
	end := s.q.Now()
	dur := float64(end) / float64(time.Second)
	if dur <= 0 {
		dur = 1e-9
	}
	r := &Report{Schema: ReportSchema, Scenario: sc, Partial: partial != "", PartialReason: partial,
		VirtualSecs: secs(end), Events: s.events}

	bulk := 0
	for _, b := range s.pop.bulk {
		bulk += len(b)
	}
	r.Entries = EntriesReport{Published: len(s.entries), Steady: s.steadyN, Bulk: bulk, SkippedDown: s.skipped,
		Exhausted: s.steadyN >= len(s.pop.steady), People: s.pop.people}

	never := 0
	for _, e := range s.entries {
		if e.doneAt < 0 {
			never++
		}
	}
	r.Visibility = VisibilityReport{AllNodes: s.allNodes.summary(), Replica: s.replica.summary(),
		NeverDelivered: never, ViaPush: s.acc[classPush], ViaAntiEntropy: s.acc[classAE]}
	if len(s.entries) > 0 {
		r.Visibility.NeverFraction = round6(float64(never) / float64(len(s.entries)))
	}

	pushB, aeB := s.net.TotalSent(classPush), s.net.TotalSent(classAE)
	recv := s.net.TotalReceived(classPush) + s.net.TotalReceived(classAE)
	var maxNode uint64
	for i := range n {
		a, _ := s.net.Sent(i, classPush)
		b, _ := s.net.Sent(i, classAE)
		maxNode = max(maxNode, a+b)
	}
	var entryBytes float64
	for _, e := range s.canon {
		entryBytes += float64(e.Size())
	}
	meanEntry := 0.0
	if len(s.canon) > 0 {
		meanEntry = entryBytes / float64(len(s.canon))
	}
	perNode := func(b uint64) float64 { return round3(float64(b) / float64(n) / dur) }
	r.Bandwidth = BandwidthReport{
		PushBytesPerNodeSec: perNode(pushB), AEBytesPerNodeSec: perNode(aeB), RecvBytesPerNodeSec: perNode(recv),
		RecvPushPerNodeSec: perNode(s.net.TotalReceived(classPush)), RecvAEPerNodeSec: perNode(s.net.TotalReceived(classAE)),
		MaxNodeSentPerSec: round3(float64(maxNode) / dur), PushBytes: pushB, AEBytes: aeB,
	}
	// memberlist: each node transmits each broadcast 4·⌈log10(N+1)⌉ times,
	// with a few bytes of framing per message (type byte and compound
	// header, ~4 B).
	limit := 4 * math.Ceil(math.Log10(float64(n)+1))
	ml := float64(len(s.entries)) * (meanEntry + 4) * limit / dur
	r.Bandwidth.MemberlistBroadcastPerNodeSec = round3(ml)
	r.Bandwidth.RatioToMemberlist = ratio(float64(pushB+aeB)/float64(n)/dur, ml)

	var et EngineTotals
	var sessions uint64
	for _, nd := range s.nodes {
		st := nd.eng.Stats()
		et.PushDropped += st.PushDropped
		et.BudgetExhausted += st.BudgetExhausted
		et.SendErrors += st.SendErrors
		et.BadMessages += st.BadMessages
		et.EntriesRejected += st.EntriesRejected
		et.Pulls += st.Pulls
		et.PullRetries += st.PullRetries
		et.PullsAbandoned += st.PullsAbandoned
		et.PullsRefused += st.PullsRefused
		et.RejoinExchanges += st.RejoinExchanges
		et.Reannounced += st.Reannounced
		sessions += st.SessionsStarted
	}
	r.Engines = et
	r.Reconciliation = ReconciliationReport{Sessions: sessions, DifferingEntries: s.acc[classAE],
		BytesPerEntry: ratio(float64(aeB), float64(s.acc[classAE])), EntrySize: round3(meanEntry)}

	if p := s.cpu; p != nil {
		r.CPU = &CPUReport{CPUs: p.CPUs(), ServiceTimeMs: round3(ms(p.Service())), Jobs: p.Jobs,
			MeanWaitMs: round3(float64(p.Wait) / 1e6 / math.Max(float64(p.Jobs), 1)), MaxWaitMs: round3(float64(p.MaxWait) / 1e6)}
		if v := s.q.Now(); v > 0 {
			r.CPU.Utilisation = round3(float64(p.Busy) / (float64(p.CPUs()) * float64(v)))
		}
	}
	r.Network = NetworkReport{LostMessages: s.net.Dropped[simnet.DropLoss], PartitionMessages: s.net.Dropped[simnet.DropPartition],
		QueueDrops: s.net.Dropped[simnet.DropQueue], DownDrops: s.net.Dropped[simnet.DropDown]}
	for i := range s.nodes {
		for k := range numClasses {
			_, m := s.net.Sent(i, k)
			r.Network.SentMessages += m
		}
	}
	r.Network.LostBytes = s.net.DroppedBytes[simnet.DropLoss]
	if r.Network.SentMessages > 0 {
		r.Network.LostFraction = math.Round(float64(r.Network.LostMessages)/float64(r.Network.SentMessages)*1e5) / 1e5
	}

	r.Faults = s.faults()
	r.Series = s.series(r.Faults)
	r.Recall = s.recall(r.Series)
	for _, h := range s.heals {
		hr := HealReport{Partition: h.part, HealedAt: secs(h.at), EntriesBefore: int(h.k), ConvergedAfter: -1, RecallFullAfter: -1}
		if h.doneAt >= 0 {
			hr.ConvergedAfter = secs(h.doneAt - h.at)
		}
		for i := s.windowOf(h.at); i < len(r.Series); i++ {
			ok := true
			for _, x := range r.Series[i:] {
				if x.Recall >= 0 && x.Recall < 1 {
					ok = false
					break
				}
			}
			if ok {
				hr.RecallFullAfter = round3(math.Max(0, float64(i)*float64(s.interval)/float64(time.Second)-secs(h.at)))
				break
			}
		}
		r.Heals = append(r.Heals, hr)
	}
	r.Convergence = s.convergence()

	lat := sc.Network.Latency.Median.D()
	if sc.Network.Latency.Dist == "uniform" {
		lat = (sc.Network.Latency.Min.D() + sc.Network.Latency.Max.D()) / 2
	}
	f := sc.Protocol.Fanout
	relay := sc.Protocol.RelayFanout
	if relay == 0 {
		relay = max(f, int(math.Ceil(math.Log(float64(n))))+3) // protocol's adaptive default, N−1 peers
	}
	round := sc.Protocol.PushInterval.D()/2 + 3*lat
	sr := serfModel(n, f, sc.Network.Loss)
	serfSecs := float64(sr) * sc.Protocol.PushInterval.D().Seconds()
	r.Theory = TheoryReport{
		Fanout:            f,
		RoundsLogN:        round3(math.Log(float64(n)) / math.Log(float64(max(relay, 2)))),
		SerfRounds:        sr,
		SerfSeconds:       round3(serfSecs),
		RoundTimeMs:       ms(round),
		MeasuredRoundsP50: ratio(r.Visibility.AllNodes.P50, ms(round)),
		RatioP50ToSerf:    ratio(r.Visibility.AllNodes.P50/1000, serfSecs),
		RatioP99ToSerf:    ratio(r.Visibility.AllNodes.P99/1000, serfSecs),
		RelayFanout:       relay,
		PushCoverage:      pushCoverage(relay),
		MeasuredPushShare: ratio(float64(s.acc[classPush]), float64(s.acc[classPush]+s.acc[classAE])),
	}
	return r
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

func (s *simulation) faults() []Fault {
	var out []Fault
	for i, p := range s.sc.Partitions {
		out = append(out, Fault{Kind: "partition", From: secs(int64(p.From)), Until: secs(int64(p.Until)),
			Label: partitionLabel(i, p)})
	}
	for i, c := range s.sc.Churn {
		until := c.At + c.RejoinAfter
		if c.RejoinAfter == 0 {
			until = s.sc.Duration
		}
		out = append(out, Fault{Kind: "churn", From: secs(int64(c.At)), Until: secs(int64(until)),
			Label: fmtLabel("churn %d: %.0f%% %s", i, c.Fraction*100, c.Action)})
	}
	for i, b := range s.sc.BulkImports {
		out = append(out, Fault{Kind: "bulk-import", From: secs(int64(b.At)), Until: secs(int64(b.At)),
			Label: fmtLabel("bulk import %d: %d entries at node %d", i, b.Entries, b.Node)})
	}
	return out
}

func (s *simulation) series(faults []Fault) []Sample {
	out := make([]Sample, len(s.windows))
	iv := float64(s.interval) / float64(time.Second)
	for w := range s.windows {
		win := &s.windows[w]
		x := Sample{T: round3(float64(w) * iv), Published: win.published, UpNodes: win.upNodes, Recall: -1,
			Delivered: win.ttv.n}
		x.TTVP50 = ms(win.ttv.quantile(0.5))
		x.TTVP99 = ms(win.ttv.quantile(0.99))
		x.TTVMax = ms(time.Duration(win.ttv.max))
		var prev [numClasses]uint64
		if w > 0 {
			prev = s.windows[w-1].sent
		}
		if up := float64(max(win.upNodes, 1)); win.sent[classPush] >= prev[classPush] && win.upNodes > 0 {
			x.PushBps = round3(float64(win.sent[classPush]-prev[classPush]) / up / iv)
			x.AEBps = round3(float64(win.sent[classAE]-prev[classAE]) / up / iv)
		}
		if win.recallN > 0 {
			x.Recall = round6(win.recallSum / float64(win.recallN))
		}
		t0, t1 := float64(w)*iv, float64(w+1)*iv
		for _, f := range faults {
			if f.Kind != "bulk-import" && f.From < t1 && f.Until > t0 {
				x.Fault = true
			}
		}
		out[w] = x
	}
	return out
}

func (s *simulation) recall(series []Sample) RecallReport {
	var r RecallReport
	var sum, fsum, osum float64
	var fn, on uint64
	r.Min = -1
	for w, x := range series {
		win := &s.windows[w]
		if win.recallN == 0 {
			continue
		}
		r.Probes += win.recallN
		sum += win.recallSum
		if x.Fault {
			fsum += win.recallSum
			fn += win.recallN
		} else {
			osum += win.recallSum
			on += win.recallN
		}
		if r.Min < 0 || x.Recall < r.Min {
			r.Min = x.Recall
		}
	}
	if r.Probes > 0 {
		r.Mean = round6(sum / float64(r.Probes))
	}
	r.DuringFaults, r.OutsideFaults = -1, -1
	if fn > 0 {
		r.DuringFaults = round6(fsum / float64(fn))
	}
	if on > 0 {
		r.OutsideFaults = round6(osum / float64(on))
	}
	return r
}

func (s *simulation) convergence() ConvergenceReport {
	var c ConvergenceReport
	roots := make(map[[16]byte]bool)
	c.MinEntries = -1
	for _, nd := range s.nodes {
		if !nd.up {
			continue
		}
		c.UpNodes++
		roots[nd.store.Bucket(0, 0).Hash] = true
		l := nd.store.Len()
		if c.MinEntries < 0 || l < c.MinEntries {
			c.MinEntries = l
		}
		c.MaxEntries = max(c.MaxEntries, l)
	}
	c.DistinctDigests = len(roots)
	c.Identical = len(roots) == 1
	return c
}

func partitionLabel(i int, p Partition) string {
	switch {
	case p.Region != nil:
		return fmtLabel("partition %d: region %d cut off", i, *p.Region)
	case len(p.Nodes) > 0:
		return fmtLabel("partition %d: %d nodes cut off", i, len(p.Nodes))
	}
	return fmtLabel("partition %d: %.0f%% cut off", i, p.Fraction*100)
}

func fmtLabel(format string, args ...any) string { return fmt.Sprintf(format, args...) }

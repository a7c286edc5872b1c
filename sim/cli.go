package sim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// SimMain is the `signpost sim` subcommand: run a scenario (built-in name
// or JSON file), print a short summary, and write the JSON report and the
// SVG picture when asked; with --compare-real, also run real agents and
// print a verdict. Exit codes (exitCodes): 0 done (and, with
// --compare-real, the simulation agreed with the real agents within
// --tolerance), 1 failure, a partial run, or disagreement, 2 usage. On ctx
// cancellation (Ctrl-C) it stops, and still writes the report, marked
// partial.
func SimMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "steady", "built-in scenario ("+strings.Join(BuiltinNames(), ", ")+") or a JSON scenario file; - reads stdin")
	nodes := fs.Int("nodes", 0, "override the scenario's node count")
	seed := fs.Uint64("seed", 0, "override the scenario's seed")
	duration := fs.Duration("duration", 0, "override the scenario's duration (events after it are clipped)")
	out := fs.String("out", "", "write the JSON report to this file (- for stdout)")
	svg := fs.String("svg", "", "write the SVG picture to this file")
	noWall := fs.Bool("no-wall", false, "leave the wall-clock/memory fields out of the report (for byte comparison)")
	list := fs.Bool("list", false, "list the built-in scenarios and exit")
	compare := fs.Int("compare-real", 0, "also run this many real federation agents on loopback with the scenario's publications (no faults) and compare them with a simulation of the same size")
	tolerance := fs.Float64("tolerance", 0.35, "with --compare-real: the agreement asked of the all-nodes p50 and p90 (|sim/real−1|)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: signpost sim [flags]")
		fmt.Fprintln(stderr, "Simulates a federation of many nodes running the real locator and protocol code in virtual time.")
		fs.PrintDefaults()
		fmt.Fprint(stderr, exitCodes)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sim: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *list {
		for _, n := range BuiltinNames() {
			s, _ := Builtin(n)
			fmt.Fprintf(stdout, "%-16s %s\n", n, s.Description)
		}
		return 0
	}
	var sc *Scenario
	var err error
	if *scenario == "-" {
		sc, err = ParseScenario(stdin)
	} else {
		sc, err = LoadScenario(*scenario)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sim: %v\n", err)
		return 2
	}
	if *nodes != 0 {
		sc.Nodes = *nodes
		if *nodes >= 1 {
			sc.People.MaxAgencies = min(sc.People.MaxAgencies, *nodes)
		}
	}
	if *seed != 0 {
		sc.Seed = *seed
	}
	if *duration != 0 {
		sc.Shorten(*duration)
	}
	if err := sc.Validate(); err != nil {
		fmt.Fprintf(stderr, "sim: %v\n", err)
		return 2
	}
	if *compare != 0 && (*compare < 2 || *compare > 500) {
		fmt.Fprintf(stderr, "sim: --compare-real %d outside 2..500\n", *compare)
		return 2
	}
	if !(*tolerance > 0) || math.IsInf(*tolerance, 1) {
		fmt.Fprintf(stderr, "sim: --tolerance %v must be positive\n", *tolerance)
		return 2
	}
	// The simulation runs first, so that the real agents' leftovers
	// (goroutines still exiting, pools) do not share its wall time.
	rep, err := Run(ctx, sc)
	if rep == nil {
		fmt.Fprintf(stderr, "sim: %v\n", err)
		return 1
	}
	code := 0
	if err != nil {
		fmt.Fprintf(stderr, "sim: %v\n", err)
		code = 1
	}
	rep.Summary(stdout)
	if *compare > 0 && !rep.Partial {
		cmp, err := compareReal(ctx, sc, *compare, *tolerance, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "sim: real-node comparison: %v\n", err)
			return 1
		}
		cmp.Summary(stdout)
		v := cmp.verdict()
		fmt.Fprintln(stdout, v)
		if !cmp.Agree {
			fmt.Fprintf(stderr, "sim: real-node comparison: %s\n", v)
			code = 1
		}
		if rep.Wall != nil {
			rep.Wall.RealNodes = cmp
		}
	}
	if *noWall {
		rep.Wall = nil
	}
	if *out != "" {
		if err := writeFile(*out, stdout, rep.WriteJSON); err != nil {
			fmt.Fprintf(stderr, "sim: write report: %v\n", err)
			return 1
		}
	}
	if *svg != "" {
		if err := writeFile(*svg, stdout, rep.WriteSVG); err != nil {
			fmt.Fprintf(stderr, "sim: write picture: %v\n", err)
			return 1
		}
	}
	if rep.Partial {
		return 1
	}
	return code
}

// exitCodes ends the command's usage text.
const exitCodes = `Exit codes:
  0  done; with --compare-real, the simulation also agreed with the real
     agents (all-nodes p50 and p90 ratios within --tolerance)
  1  failure, a partial run (cancelled), or, with --compare-real, a
     DISAGREE verdict
  2  usage: a bad flag or an invalid scenario
`

// compareReal is CompareReal; tests replace it so that the verdict's exit
// code can be checked without starting real agents.
var compareReal = CompareReal

func writeFile(path string, stdout io.Writer, fn func(io.Writer) error) error {
	if path == "-" {
		return fn(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Summary prints the comparison for a human.
func (c *Comparison) Summary(w io.Writer) {
	fmt.Fprintf(w, "real nodes vs simulation (%s, %d nodes, %d entries):\n", c.Scenario, c.Nodes, c.Real.Published)
	fmt.Fprintf(w, "  judged model: %s\n", c.Model)
	if p := c.SimCPU; p != nil {
		fmt.Fprintf(w, "  (its pool: utilisation %.3f (real %.3f), mean wait %.2f ms, max wait %.1f ms over %d jobs)\n",
			p.Utilisation, c.RealUtilisation, p.MeanWaitMs, p.MaxWaitMs, p.Jobs)
	}
	fmt.Fprintf(w, "  (not judged, loopback latency median %.2f ms, processing free: all nodes p50 %.0f ms, p90 %.0f ms)\n", c.LoopbackLatencyMs, c.LoopbackP50, c.LoopbackP90)
	fmt.Fprintf(w, "  (not judged, %s: all nodes p50 %.0f ms, p90 %.0f ms; with the loopback σ: %.0f ms, %.0f ms)\n",
		c.Calibration, c.FirstHopP50, c.FirstHopP90, c.MedianOnlyP50, c.MedianOnlyP90)
	fmt.Fprintf(w, "  all nodes mean  sim %.0f ms  real %.0f ms  ratio %.2f\n", c.Sim.AllNodes.Mean, c.Real.AllNodes.Mean, c.RatioMean)
	fmt.Fprintf(w, "  all nodes p50   sim %.0f ms  real %.0f ms  ratio %.2f\n", c.Sim.AllNodes.P50, c.Real.AllNodes.P50, c.RatioP50)
	fmt.Fprintf(w, "  all nodes p90   sim %.0f ms  real %.0f ms  ratio %.2f\n", c.Sim.AllNodes.P90, c.Real.AllNodes.P90, c.RatioP90)
	fmt.Fprintf(w, "  replica p50     sim %.0f ms  real %.0f ms  ratio %.2f\n", c.Sim.Replica.P50, c.Real.Replica.P50, c.RatioReplica50)
	fmt.Fprintf(w, "  entries ≥ 2 s   sim %.3f  real %.3f  ratio %.2f (left to anti-entropy)\n", c.Sim.AllNodes.Over2s, c.Real.AllNodes.Over2s, c.RatioOver2s)
	fmt.Fprintf(w, "  push bytes/node/entry ratio %.2f, anti-entropy bytes/node/s ratio %.2f\n", c.RatioPushPerEntry, c.RatioAEPerSec)
	fmt.Fprintf(w, "  pulls/node/entry  sim %.3f  real %.3f  ratio %.2f (further requests: sim %d, real %d; left to anti-entropy: sim %d, real %d)\n",
		pullsPerEntry(c.Sim), pullsPerEntry(*c.Real), c.RatioPullsPerEntry, c.Sim.PullRetries, c.Real.PullRetries, c.Sim.PullsAbandoned, c.Real.PullsAbandoned)
	fmt.Fprintf(w, "  agree within ±%.0f%% (p50 and p90): %v; real never delivered %d\n", c.Tolerance*100, c.Agree, c.Real.NeverDelivered)
	fmt.Fprintf(w, "  real all nodes, first half of the entries p50 %.0f ms p90 %.0f ms; second half p50 %.0f ms p90 %.0f ms\n",
		c.Real.AllNodesEarly.P50, c.Real.AllNodesEarly.P90, c.Real.AllNodesLate.P50, c.Real.AllNodesLate.P90)
	fmt.Fprintf(w, "  real CPU: %.1f s over %.1f s (background %.2f CPUs, other processes %.2f CPUs, GOMAXPROCS %d); GC %d cycles, pauses %.1f ms in all, longest %.2f ms\n",
		c.Real.CPUSeconds, c.Real.WindowSeconds, c.Real.BackgroundCPUs, c.Real.OtherCPUs, c.Real.GOMAXPROCS, c.Real.GCCycles, c.Real.GCPauseMs, c.Real.GCMaxPauseMs)
	fmt.Fprintf(w, "  real agents: start-up %.1f s (%d re-joins), window %.1f s, sends dropped %d, failed %d, inbound dropped %d; load average %.1f → %.1f\n",
		c.Real.StartupSeconds, c.Real.Rejoins, c.Real.WindowSeconds, c.Real.SendDropped, c.Real.SendFailed, c.Real.InboundDropped, c.Real.LoadBefore, c.Real.LoadAfter)
}

// Summary prints the headline figures for a human.
func (r *Report) Summary(w io.Writer) {
	sc := r.Scenario
	fmt.Fprintf(w, "scenario %s: %d nodes, %v virtual, seed %d", sc.Name, sc.Nodes, time.Duration(r.VirtualSecs*float64(time.Second)), sc.Seed)
	if r.Partial {
		fmt.Fprintf(w, " — PARTIAL: %s", r.PartialReason)
	}
	fmt.Fprintln(w)
	v := r.Visibility
	fmt.Fprintf(w, "  entries published      %d (%d never reached every up node, %.4f)\n", r.Entries.Published, v.NeverDelivered, v.NeverFraction)
	fmt.Fprintf(w, "  time to all nodes      p50 %.0f ms  p90 %.0f ms  p99 %.0f ms  max %.0f ms\n", v.AllNodes.P50, v.AllNodes.P90, v.AllNodes.P99, v.AllNodes.Max)
	fmt.Fprintf(w, "  per-replica delay      p50 %.0f ms  p99 %.0f ms  (%d by push, %d by anti-entropy)\n", v.Replica.P50, v.Replica.P99, v.ViaPush, v.ViaAntiEntropy)
	b := r.Bandwidth
	fmt.Fprintf(w, "  bytes/node/s           push %.0f  anti-entropy %.0f  (memberlist broadcast would be %.0f; ratio %.3f)\n", b.PushBytesPerNodeSec, b.AEBytesPerNodeSec, b.MemberlistBroadcastPerNodeSec, b.RatioToMemberlist)
	if p := r.CPU; p != nil {
		fmt.Fprintf(w, "  shared CPU pool        %d processors, %.3f ms per message, utilisation %.3f, wait mean %.2f ms max %.1f ms\n", p.CPUs, p.ServiceTimeMs, p.Utilisation, p.MeanWaitMs, p.MaxWaitMs)
	}
	fmt.Fprintf(w, "  reconciliation         %.0f bytes per repaired entry (entry %.0f B)\n", r.Reconciliation.BytesPerEntry, r.Reconciliation.EntrySize)
	fmt.Fprintf(w, "  recall                 mean %.4f, during faults %.4f, outside %.4f\n", r.Recall.Mean, r.Recall.DuringFaults, r.Recall.OutsideFaults)
	for _, h := range r.Heals {
		fmt.Fprintf(w, "  heal at %.0fs            converged after %.3f s, recall 100%% after %.3f s\n", h.HealedAt, h.ConvergedAfter, h.RecallFullAfter)
	}
	c := r.Convergence
	fmt.Fprintf(w, "  replicas at end        %d up, %d distinct digests, entries %d..%d\n", c.UpNodes, c.DistinctDigests, c.MinEntries, c.MaxEntries)
	t := r.Theory
	fmt.Fprintf(w, "  theory                 log N/log R = %.2f rounds (R %d, push coverage %.3f predicted, %.3f measured); Serf model %d rounds = %.2f s; measured p50/Serf %.2f, p99/Serf %.2f\n", t.RoundsLogN, t.RelayFanout, t.PushCoverage, t.MeasuredPushShare, t.SerfRounds, t.SerfSeconds, t.RatioP50ToSerf, t.RatioP99ToSerf)
	if r.Wall != nil {
		fmt.Fprintf(w, "  wall                   %.2f s, %.0f events/s, heap %.1f MiB (%.1f KiB/node)\n", r.Wall.Seconds, r.Wall.EventsPerSecond, float64(r.Wall.HeapBytes)/(1<<20), float64(r.Wall.HeapPerNode)/1024)
	}
}

// Package sim simulates a Signpost federation of hundreds to tens of
// thousands of nodes in one process, in virtual time, running the real
// federation/protocol Engine and the real locator.MemStore for every node.
// It is what `signpost sim` runs.
//
// # Architecture
//
// Following serf's coordinate/phantom.go, a run has three steps:
//
//   - Generate. A Scenario (JSON; five built-ins in scenarios/) and its
//     seed determine the world: the agencies (one per node, its kind drawn
//     by weight), the synthetic people and the agencies each is known to (a
//     Zipf law: most to one or two, a few to many), the network (latency
//     distribution, loss, regions with wide-area links, per-node bandwidth),
//     and the faults (partitions, churn, bulk imports). No NHS number is
//     ever made: lookup and seal keys are derived from the seed and the
//     person's index, and each agency's Holder from the seed and the node.
//   - Simulate. A discrete-event loop (internal/simnet: a min-heap keyed by
//     virtual time and insertion order, and a network that accounts every
//     byte) delivers messages to Engine.HandleMessage, ticks each engine at
//     its NextWake, publishes entries through Engine.Publish, and probes
//     lookups at random nodes. Single-threaded, no wall clock, every random
//     choice from a PCG seeded by the scenario: the same scenario gives the
//     same report, byte for byte, except the "wall" object.
//   - Evaluate. The Report: time-to-visibility (to every up node, and per
//     replica), bandwidth per node by class (push vs anti-entropy) against
//     memberlist's broadcast at the same N, reconciliation bytes per repaired
//     entry, lookup recall during and outside faults, convergence after each
//     partition heals, and the epidemic theory beside the measurement. The
//     tests assert bounds on these at a fixed seed.
//
// A heal has converged when every up node holds every entry published
// before that heal. Each partition's heal is tracked on its own, so with
// overlapping partitions the first heal's figure includes waiting for the
// second (entries published on the far side of a partition still in force
// cannot arrive before it heals).
//
// # Model and its simplifications
//
//   - Membership is one global view: every up node, plus crashed nodes until
//     Churn.FailureDetection has passed (a graceful leave is seen at once).
//     Partitions do not change membership (memberlist would eventually
//     suspect the far side); messages across an active partition are lost,
//     checked at send and at arrival. When a partition heals, every up
//     node is told that the nodes across it are alive again, unreachable
//     since the cut began (Engine.PeerAlive), as memberlist's reconnect
//     and gossip report them; the sim does so at the heal itself, so the
//     real agents' rediscovery time (a reconnect round and a few gossip
//     rounds) comes on top. A churned node coming back is reported the
//     same way to every member, and every member to it. Each node's view "all members but me"
//     is a sub-slice of one shared doubled array, so membership costs O(N)
//     memory in total, not per node.
//   - Bandwidth is a per-node uplink and downlink of the same capacity;
//     messages serialise on both (the downlink is reserved in send order),
//     and a message that would wait longer than MaxQueueDelay for the uplink
//     is dropped at the sender, which the engine sees as a Send error
//     (back-pressure). Latency and loss are per message, by link class.
//     There is no per-link capacity: a wide-area link between regions
//     differs from a local one only in latency and loss, and is limited only
//     by the two nodes' own uplink and downlink.
//   - Replication is "full" only: every node holds every entry, because the
//     protocol core has no sharding yet; a scenario asking for "sharded" is
//     rejected.
//   - Entries are interned: every replica of an entry shares the publisher's
//     *locator.Entry (locator allows it: entries are immutable), and the
//     stores share a locator.VerifyCache, so a write's signature is checked
//     once per run rather than once per replica. Per node the sim keeps an
//     Engine, a MemStore (digest depth 2 by default) and a few words.
//   - Time-to-visibility needs no per-(entry, node) table: each entry keeps
//     the number of up nodes holding it, and the first time that reaches
//     the number of up nodes is its "all nodes" time. A node going down
//     subtracts what it holds; one coming back adds it.
//
// # Scenario files
//
// A scenario file is JSON only (the request asked for JSON or YAML; for
// YAML, convert it first, e.g. with `yq -o json`). It is read over
// DefaultScenario, so fields left out keep their defaults. Decoding is
// strict and names the field path of every problem, all at once:
// unknown fields ("partitions[1].bogus: unknown field"; names match
// exactly), wrong types ("duration: want a duration string such as
// "250ms", got 60"), keys given twice; then Validate checks the values
// the same way. sim/testdata/bad holds examples with their messages.
//
// # Report (schema signpost-sim-report/v1)
//
// JSON, written by Report.WriteJSON; every field is documented on the
// Report type and its parts. Units are in the names: _ms milliseconds,
// _s seconds of virtual time, bytes_per_node_per_second averaged over the
// run and the nodes. -1 means "did not happen within the run" (a heal that
// never converged, recall with no probe in a class of window). The "wall"
// object holds everything that depends on the machine (wall seconds,
// events per wall second, heap, Go version); remove it (--no-wall) to
// compare two runs byte for byte. "partial" is true when the run was
// cancelled; the figures then cover the virtual time reached.
//
// The picture (Report.WriteSVG) has two panels sharing the time axis:
// time-to-visibility p50 and p99 by publication window, and bytes sent per
// node per second (push, anti-entropy) with lookup recall; partitions and
// churn are shaded, bulk imports marked with a line.
//
// # Real nodes
//
// RunReal runs the same publications on real federation.Agents (memberlist
// and mutual-TLS HTTP on loopback, in real time), and CompareReal sets them
// beside a simulation of the same size and parameters (time-to-visibility,
// bytes). The real agents run first, on processors they all share, and
// the judged simulation models that: loopback latency, and every received
// message a job on a shared pool of GOMAXPROCS processors (first come,
// first served), its service time the real run's CPU per message
// (network.shared_cpus and service_time; off in every other scenario,
// where nodes are separate machines). The report prints the model's inputs
// and their source, and beside it, not judged, the uncalibrated loopback
// figures and a simulation whose one-way latency is the real first hop's
// (docs/RATIONALE.md says why). `signpost sim --compare-real N` and the test behind
// SIGNPOST_REALNODES=N drive it. Its figures are wall-clock and live under
// the report's "wall" object. RunReal starts goroutines (the agents' and one
// watch reader per agent) and stops them all before it returns.
package sim

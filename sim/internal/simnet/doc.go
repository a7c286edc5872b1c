// Package simnet is the discrete-event core of the simulator: a virtual clock
// and event queue ([Queue]) and a simulated network ([Network]) with
// per-message latency, loss, serialisation delay and queueing on each node's
// uplink and downlink, and partitions as time windows over groups of nodes;
// and a pool of processors every node shares ([CPUPool]), for nodes that
// run on one machine.
//
// Invariants:
//
//   - Determinism. Events are ordered by (virtual time, sequence number of
//     insertion); the network draws latency and loss from its own PCG source
//     in the order messages are sent. The same inputs in the same order give
//     the same outputs, bit for bit.
//   - Accounting. Every message offered to [Network.Send] is counted: either
//     it is dropped at the sender's full queue (counted as a queue drop, not
//     as sent), or it leaves the sender (counted as sent, by kind) and is
//     later delivered (counted as received) or lost on the way (loss or
//     partition, counted by cause).
//
// Data enters as calls to Send with a size and a kind, and leaves as a
// delivery time the caller schedules on the Queue; simnet never touches the
// payload. Nodes are dense integers 0..n-1. Nothing here is safe for
// concurrent use: the simulator is single-threaded by design.
package simnet

package simnet

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Latency distributions.
const (
	DistFixed     = "fixed"
	DistUniform   = "uniform"
	DistLogNormal = "lognormal"
)

// Latency is a one-way latency distribution.
//
//   - fixed: always Median.
//   - uniform: uniform in [Min, Max].
//   - lognormal: Median·exp(Sigma·Z), Z standard normal, clamped to
//     [Min, Max] when those are set (Max 0 means no upper bound).
type Latency struct {
	Dist   string
	Median time.Duration
	Min    time.Duration
	Max    time.Duration
	Sigma  float64
}

// Validate reports every problem with l.
func (l Latency) Validate() error {
	var errs []error
	switch l.Dist {
	case DistFixed, DistLogNormal:
		if l.Median < 0 {
			errs = append(errs, fmt.Errorf("median %v is negative", l.Median))
		}
	case DistUniform:
		if l.Min < 0 || l.Max < l.Min {
			errs = append(errs, fmt.Errorf("uniform needs 0 ≤ min ≤ max, got min %v max %v", l.Min, l.Max))
		}
	default:
		errs = append(errs, fmt.Errorf("distribution %q is not one of fixed, uniform, lognormal", l.Dist))
	}
	if l.Dist == DistLogNormal && (l.Sigma < 0 || l.Sigma > 5 || math.IsNaN(l.Sigma)) {
		errs = append(errs, fmt.Errorf("sigma %v outside 0..5", l.Sigma))
	}
	if l.Dist == DistLogNormal && l.Max != 0 && l.Max < l.Min {
		errs = append(errs, fmt.Errorf("max %v below min %v", l.Max, l.Min))
	}
	return errors.Join(errs...)
}

// Sample draws one latency.
func (l Latency) Sample(r *rand.Rand) time.Duration {
	switch l.Dist {
	case DistUniform:
		if l.Max == l.Min {
			return l.Min
		}
		return l.Min + time.Duration(r.Int64N(int64(l.Max-l.Min)+1))
	case DistLogNormal:
		d := time.Duration(float64(l.Median) * math.Exp(l.Sigma*r.NormFloat64()))
		if d < l.Min {
			d = l.Min
		}
		if l.Max > 0 && d > l.Max {
			d = l.Max
		}
		return d
	}
	return l.Median
}

// Link describes every link of one class (within a region, or between
// regions).
type Link struct {
	Latency Latency
	// Loss is the probability that a message is lost, 0 ≤ Loss < 1.
	Loss float64
}

// Config describes the network.
type Config struct {
	// Nodes is the number of nodes, ≥ 1.
	Nodes int
	// Region gives each node's region (len Nodes), or nil for one region.
	Region []uint16
	// Local applies between two nodes of the same region, Wide between
	// regions (a zero Wide means the same as Local).
	Local, Wide Link
	// Bandwidth is each node's uplink and downlink capacity in bytes per
	// second; 0 means unlimited (no serialisation delay).
	Bandwidth int64
	// MaxQueueDelay bounds how long a message may wait for a node's
	// uplink: a message that would wait longer is dropped at the sender
	// (tail drop). 0 means 2 s.
	MaxQueueDelay time.Duration
	// Kinds is the number of message kinds accounted separately (≥ 1).
	Kinds int
	// Seed seeds the network's own random source (latency, loss).
	Seed uint64
}

// Partition blocks every message between nodes whose Side differs during
// [From, Until). Side has one entry per node.
type Partition struct {
	From, Until int64
	Side        []uint8
}

// Active reports whether p blocks traffic at time t.
func (p *Partition) Active(t int64) bool { return t >= p.From && t < p.Until }

// Drop causes, indexes of Stats.Dropped.
const (
	DropLoss = iota
	DropPartition
	DropQueue
	DropDown
	NumDropCauses
)

// Counters are one node's traffic totals, per message kind.
type Counters struct {
	SentBytes, RecvBytes []uint64
	SentMsgs, RecvMsgs   []uint64
}

// Network is the simulated network. Not safe for concurrent use.
type Network struct {
	cfg   Config
	rng   *rand.Rand
	parts []Partition
	// upFree and downFree are when each node's uplink and downlink are
	// next idle (virtual ns).
	upFree, downFree []int64
	sentB, recvB     []uint64 // [node*kinds+kind]
	sentM, recvM     []uint64
	totSent, totRecv []uint64 // [kind]
	// Dropped counts lost messages by cause (DropLoss…).
	Dropped [NumDropCauses]uint64
	// DroppedBytes counts their bytes by cause.
	DroppedBytes [NumDropCauses]uint64
}

// New returns a network for cfg.
func New(cfg Config) (*Network, error) {
	var errs []error
	if cfg.Nodes < 1 {
		errs = append(errs, fmt.Errorf("nodes %d < 1", cfg.Nodes))
	}
	if cfg.Region != nil && len(cfg.Region) != cfg.Nodes {
		errs = append(errs, fmt.Errorf("region has %d entries for %d nodes", len(cfg.Region), cfg.Nodes))
	}
	if cfg.Wide.Latency.Dist == "" {
		cfg.Wide = cfg.Local
	}
	for i, l := range []Link{cfg.Local, cfg.Wide} {
		name := [...]string{"local", "wide"}[i]
		if err := l.Latency.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s latency: %w", name, err))
		}
		if !(l.Loss >= 0 && l.Loss < 1) {
			errs = append(errs, fmt.Errorf("%s loss %v outside [0, 1)", name, l.Loss))
		}
	}
	if cfg.Bandwidth < 0 {
		errs = append(errs, fmt.Errorf("bandwidth %d is negative", cfg.Bandwidth))
	}
	if cfg.MaxQueueDelay < 0 {
		errs = append(errs, fmt.Errorf("max queue delay %v is negative", cfg.MaxQueueDelay))
	}
	if cfg.MaxQueueDelay == 0 {
		cfg.MaxQueueDelay = 2 * time.Second
	}
	if cfg.Kinds < 1 {
		cfg.Kinds = 1
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("simnet: invalid config: %w", err)
	}
	n := cfg.Nodes * cfg.Kinds
	return &Network{
		cfg:      cfg,
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x5349_4d4e_4554)), // "SIMNET"
		upFree:   make([]int64, cfg.Nodes),
		downFree: make([]int64, cfg.Nodes),
		sentB:    make([]uint64, n),
		recvB:    make([]uint64, n),
		sentM:    make([]uint64, n),
		recvM:    make([]uint64, n),
		totSent:  make([]uint64, cfg.Kinds),
		totRecv:  make([]uint64, cfg.Kinds),
	}, nil
}

// AddPartition adds a partition window. Side must have one entry per node.
func (n *Network) AddPartition(p Partition) error {
	if len(p.Side) != n.cfg.Nodes {
		return fmt.Errorf("simnet: partition side has %d entries for %d nodes", len(p.Side), n.cfg.Nodes)
	}
	if p.Until <= p.From {
		return fmt.Errorf("simnet: partition until %d not after from %d", p.Until, p.From)
	}
	n.parts = append(n.parts, p)
	return nil
}

// Blocked reports whether a partition separates a and b at time t.
func (n *Network) Blocked(t int64, a, b int) bool {
	for i := range n.parts {
		p := &n.parts[i]
		if p.Active(t) && p.Side[a] != p.Side[b] {
			return true
		}
	}
	return false
}

func (n *Network) link(a, b int) *Link {
	if n.cfg.Region != nil && n.cfg.Region[a] != n.cfg.Region[b] {
		return &n.cfg.Wide
	}
	return &n.cfg.Local
}

func (n *Network) txTime(size int) int64 {
	if n.cfg.Bandwidth <= 0 {
		return 0
	}
	return int64(size) * int64(time.Second) / n.cfg.Bandwidth
}

// Send offers a message of size bytes and kind from node from to node to
// at time now. It returns when the message arrives and true, or false if it
// is dropped (the cause is counted). A message that leaves the sender is
// counted as sent even if it is later lost; the caller must call Deliver at
// the returned time, which checks partitions again and counts the receipt.
func (n *Network) Send(now int64, from, to, kind, size int) (int64, bool) {
	tx := n.txTime(size)
	start := max(now, n.upFree[from])
	if start-now > int64(n.cfg.MaxQueueDelay) {
		n.drop(DropQueue, size)
		return 0, false
	}
	departed := start + tx
	n.upFree[from] = departed
	i := from*n.cfg.Kinds + kind
	n.sentB[i] += uint64(size)
	n.sentM[i]++
	n.totSent[kind] += uint64(size)
	l := n.link(from, to)
	// Draw in a fixed order whatever the outcome, so that one message's
	// fate does not shift the random stream of the next.
	lat := l.Latency.Sample(n.rng)
	lost := l.Loss > 0 && n.rng.Float64() < l.Loss
	if lost {
		n.drop(DropLoss, size)
		return 0, false
	}
	if n.Blocked(now, from, to) {
		n.drop(DropPartition, size)
		return 0, false
	}
	// The first bit arrives after the latency; the receiver's downlink
	// serialises (reserved in send order, which is FIFO per receiver).
	arrive := max(start+int64(lat), n.downFree[to]) + tx
	arrive = max(arrive, departed+int64(lat))
	n.downFree[to] = arrive
	return arrive, true
}

// Deliver is called at a message's arrival time. It reports whether the
// message is received (false if a partition now separates the nodes or
// the receiver is down, as the caller says with up) and counts it.
func (n *Network) Deliver(now int64, from, to, kind, size int, up bool) bool {
	if !up {
		n.drop(DropDown, size)
		return false
	}
	if n.Blocked(now, from, to) {
		n.drop(DropPartition, size)
		return false
	}
	i := to*n.cfg.Kinds + kind
	n.recvB[i] += uint64(size)
	n.recvM[i]++
	n.totRecv[kind] += uint64(size)
	return true
}

func (n *Network) drop(cause, size int) {
	n.Dropped[cause]++
	n.DroppedBytes[cause] += uint64(size)
}

// Sent returns node's bytes and messages sent of kind.
func (n *Network) Sent(node, kind int) (bytes, msgs uint64) {
	i := node*n.cfg.Kinds + kind
	return n.sentB[i], n.sentM[i]
}

// Received returns node's bytes and messages received of kind.
func (n *Network) Received(node, kind int) (bytes, msgs uint64) {
	i := node*n.cfg.Kinds + kind
	return n.recvB[i], n.recvM[i]
}

// TotalSent returns the bytes sent of kind summed over all nodes.
func (n *Network) TotalSent(kind int) uint64 { return n.totSent[kind] }

// TotalReceived returns the bytes received of kind summed over all nodes.
func (n *Network) TotalReceived(kind int) uint64 { return n.totRecv[kind] }

// ResetNode forgets a node's link queues (a node that crashed and came
// back starts with idle links).
func (n *Network) ResetNode(node int, now int64) {
	n.upFree[node] = now
	n.downFree[node] = now
}

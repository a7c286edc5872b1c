// Package protocoltest is a small deterministic in-memory harness for the
// protocol engine: a simulated network with latency, loss, duplication and
// reordering, virtual time, and byte accounting. Everything is driven by
// one seeded generator, so a run is reproducible from its seed. It is meant
// for tests and as a worked example for richer harnesses (sim).
package protocoltest

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

// Network is a virtual-time network of engines. Not safe for concurrent
// use.
type Network struct {
	// Now is the virtual clock.
	Now time.Time
	// Loss and Dup are the probabilities that a message is dropped or
	// delivered twice; MinDelay..MaxDelay is the uniform latency (a spread
	// reorders messages).
	Loss, Dup          float64
	MinDelay, MaxDelay time.Duration
	// Cut, when set, drops every message for which it returns true (a
	// partition).
	Cut func(from, to protocol.PeerID) bool

	rand  *rand.Rand
	nodes []*Node
	byID  map[protocol.PeerID]*Node
	q     deliveries
	seq   uint64

	// Counters of the whole run.
	MsgsSent, BytesSent, MsgsDropped, MsgsDelivered uint64
	// HandleErrors counts HandleMessage errors (which a well-behaved
	// network never causes).
	HandleErrors uint64
}

// Node is one member of the network.
type Node struct {
	ID     protocol.PeerID
	Engine *protocol.Engine
	Store  locator.Store
	// Down nodes neither send, receive nor tick.
	Down bool
	net  *Network
}

// New returns an empty network whose randomness all derives from seed,
// starting at start.
func New(seed uint64, start time.Time) *Network {
	return &Network{
		Now:      start,
		MinDelay: 5 * time.Millisecond,
		MaxDelay: 20 * time.Millisecond,
		rand:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		byID:     make(map[protocol.PeerID]*Node),
	}
}

// Add creates an engine for id over store with cfg (Self and Rand are set
// here) and adds it to the network.
func (n *Network) Add(id protocol.PeerID, store locator.Store, cfg protocol.Config) (*Node, error) {
	if n.byID[id] != nil {
		return nil, fmt.Errorf("protocoltest: duplicate node %s", id)
	}
	node := &Node{ID: id, Store: store, net: n}
	cfg.Self = id
	cfg.Rand = rand.New(rand.NewPCG(n.rand.Uint64(), n.rand.Uint64()))
	eng, err := protocol.New(cfg, store, (*transport)(node), (*membership)(node))
	if err != nil {
		return nil, err
	}
	node.Engine = eng
	n.nodes = append(n.nodes, node)
	n.byID[id] = node
	return node, nil
}

// Restart replaces a node's engine and store, as a process restart does:
// the old engine's pending push queue is lost, messages in flight to the
// node are still delivered to the new engine. The caller closes and reopens
// the store (or passes a fresh one, for a node that lost its disk).
func (n *Network) Restart(id protocol.PeerID, store locator.Store, cfg protocol.Config) (*Node, error) {
	node := n.byID[id]
	if node == nil {
		return nil, fmt.Errorf("protocoltest: unknown node %s", id)
	}
	cfg.Self = id
	cfg.Rand = rand.New(rand.NewPCG(n.rand.Uint64(), n.rand.Uint64()))
	eng, err := protocol.New(cfg, store, (*transport)(node), (*membership)(node))
	if err != nil {
		return nil, err
	}
	node.Engine, node.Store, node.Down = eng, store, false
	return node, nil
}

// Nodes returns the nodes in the order they were added.
func (n *Network) Nodes() []*Node { return n.nodes }

type transport Node

func (t *transport) Send(to protocol.PeerID, msg []byte) error {
	n := t.net
	n.MsgsSent++
	n.BytesSent += uint64(len(msg))
	if t.Down || (n.Cut != nil && n.Cut(t.ID, to)) || n.rand.Float64() < n.Loss {
		n.MsgsDropped++
		return nil
	}
	copies := 1
	if n.rand.Float64() < n.Dup {
		copies = 2
	}
	for range copies {
		d := n.MinDelay
		if n.MaxDelay > n.MinDelay {
			d += time.Duration(n.rand.Int64N(int64(n.MaxDelay - n.MinDelay)))
		}
		n.seq++
		heap.Push(&n.q, delivery{at: n.Now.Add(d), seq: n.seq, from: t.ID, to: to, msg: append([]byte(nil), msg...)})
	}
	return nil
}

type membership Node

func (m *membership) Peers() []protocol.PeerID {
	out := make([]protocol.PeerID, 0, len(m.net.nodes)-1)
	for _, o := range m.net.nodes {
		if o.ID != m.ID && !o.Down {
			out = append(out, o.ID)
		}
	}
	return out
}

type delivery struct {
	at       time.Time
	seq      uint64
	from, to protocol.PeerID
	msg      []byte
}

type deliveries []delivery

func (d deliveries) Len() int { return len(d) }
func (d deliveries) Less(i, j int) bool {
	if !d[i].at.Equal(d[j].at) {
		return d[i].at.Before(d[j].at)
	}
	return d[i].seq < d[j].seq
}
func (d deliveries) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d *deliveries) Push(x any)   { *d = append(*d, x.(delivery)) }
func (d *deliveries) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}

// Pending returns the number of messages in flight.
func (n *Network) Pending() int { return len(n.q) }

// Step runs the next event (a delivery or an engine's tick) if it is due at
// or before until, advancing Now to it; it reports whether it ran one.
func (n *Network) Step(until time.Time) bool {
	var next time.Time
	var tick *Node
	have := len(n.q) > 0
	if have {
		next = n.q[0].at
	}
	for _, node := range n.nodes {
		if node.Down {
			continue
		}
		w := maxTime(node.Engine.NextWake(), n.Now)
		if !have || w.Before(next) {
			next, tick, have = w, node, true
		}
	}
	if !have || next.After(until) {
		return false
	}
	if tick == nil {
		n.deliver(heap.Pop(&n.q).(delivery))
		return true
	}
	n.Now = maxTime(n.Now, next)
	tick.Engine.Tick(n.Now)
	return true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// RunFor runs events for d of virtual time.
func (n *Network) RunFor(d time.Duration) {
	until := n.Now.Add(d)
	for n.Step(until) {
	}
	n.Now = maxTime(n.Now, until)
}

// RunUntil runs events until cond holds (checked after every event) or
// d of virtual time has passed; it reports whether cond held.
func (n *Network) RunUntil(d time.Duration, cond func() bool) bool {
	until := n.Now.Add(d)
	for !cond() {
		if !n.Step(until) {
			n.Now = maxTime(n.Now, until)
			return cond()
		}
	}
	return true
}

// Drain delivers every message in flight without ticking any engine (so no
// new rounds start); replies are delivered too.
func (n *Network) Drain() {
	for len(n.q) > 0 {
		n.deliver(heap.Pop(&n.q).(delivery))
	}
}

func (n *Network) deliver(d delivery) {
	n.Now = maxTime(n.Now, d.at)
	to := n.byID[d.to]
	if to == nil || to.Down {
		n.MsgsDropped++
		return
	}
	n.MsgsDelivered++
	if err := to.Engine.HandleMessage(n.Now, d.from, d.msg); err != nil {
		n.HandleErrors++
	}
}

package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/sim/internal/simnet"
)

// Epoch is virtual time zero: every run starts at this instant, so that
// entry expiry and policy checks are reproducible.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Message classes, the kinds simnet accounts separately.
const (
	classPush = iota // dissemination: rumour-mongering push and its Have/Want
	classAE          // anti-entropy: digests, stamps and the transfers they cause
	numClasses
	classLocal = -1 // a local Publish, not a message
)

// classOf returns a protocol message's class (protocol.Classify; what
// it cannot classify counts as push, as the engine's Stats do).
func classOf(msg []byte) int {
	if _, ae, ok := protocol.Classify(msg); ok && ae {
		return classAE
	}
	return classPush
}

// Event kinds.
const (
	evTick = iota + 1
	evDeliver
	evPublish
	evBulk
	evLookup
	evSample
	evDown
	evMemberRemove
	evUp
	evHeal
	// evArrive is a message reaching its receiver when nodes share a
	// CPU pool: it queues there, and is delivered (evDeliver) when served.
	evArrive
)

// recallGrace: a recall probe counts as true holders only the entries
// published at least this long before it, so that recall measures faults
// rather than the normal propagation delay (which time-to-visibility
// measures).
const recallGrace = 5 * time.Second

type entryState struct {
	pubAt  int64
	doneAt int64 // first time every up node held it; -1 until then
	reach  int32 // up nodes holding it
	person int32
}

type simNode struct {
	id     protocol.PeerID
	eng    *protocol.Engine
	store  *simStore
	up     bool
	member bool   // in the membership view (a crashed node until detected)
	rejoin int    // incarnation, seeds the engine's rng
	downAt int64  // when it last went down
	wakeAt int64  // time of the pending tick event, or math.MaxInt64
	gen    uint32 // generation of the pending tick event
	holder *locator.Holder
}

type window struct {
	ttv       hist // time to every up node, entries published in the window
	recallSum float64
	recallN   uint64
	sent      [numClasses]uint64
	published int
	upNodes   int
	accepted  uint64
}

// healTrack follows one partition's heal until every up node holds every
// entry published before it. Each heal is tracked on its own, so that
// overlapping partitions, or a heal before the previous one converged,
// give each its own answer.
type healTrack struct {
	part       int
	at         int64
	k          int32   // entries published before the heal: indexes 0..k-1
	held       []int32 // per node, how many of them it holds (nil once done)
	incomplete int     // up nodes holding fewer than k
	doneAt     int64   // when incomplete reached 0; -1 until then
}

// finish marks h converged at now if no up node still lacks an entry.
func (h *healTrack) finish(now int64) bool {
	if h.incomplete > 0 {
		return false
	}
	h.doneAt, h.held = now, nil
	return true
}

type simulation struct {
	sc  *Scenario
	pop *population
	q   simnet.Queue
	net *simnet.Network
	// cpu, when the nodes share a machine's processors (network.shared_cpus
	// set), serves every arriving message before its delivery; nil means
	// processing costs nothing, as between separate machines.
	cpu   *simnet.CPUPool
	nodes []*simNode
	index map[protocol.PeerID]int32
	// Membership: ring is the up members twice over, pos each node's
	// place in it (-1: not a member), so that every node's view "all
	// members but me" is a sub-slice of one shared array.
	members []int32
	ring    []protocol.PeerID
	pos     []int32
	upCount int

	entries []entryState
	canon   []*locator.Entry
	byID    map[locator.ID]int32
	byPers  map[int32][]int32
	rng     *rand.Rand
	steadyN int // steady involvements published so far
	skipped int // publications skipped because the agency was down

	vcache     *locator.VerifyCache
	curClass   int
	replica    hist
	allNodes   hist
	acc        [numClasses]uint64 // replica deliveries by class
	windows    []window
	heals      []healTrack
	healing    []int // indexes into heals of those not yet converged, in heal order
	events     uint64
	stopAt     int64
	interval   int64
	publishEnd int64
	errs       []error
	// trace, if set (tests), sees every message at its arrival time and
	// whether the network delivered it.
	trace func(ev *simnet.Event, delivered bool)
}

func (s *simulation) now() time.Time { return Epoch.Add(time.Duration(s.q.Now())) }

// simStore is a node's replica: the real locator.MemStore, with the sim's
// observation of every accepted write and interning of decoded entries
// (every replica of an entry shares one *Entry, as locator allows).
type simStore struct {
	*locator.MemStore
	sim  *simulation
	node int32
}

func (st *simStore) intern(e *locator.Entry) *locator.Entry {
	if i, ok := st.sim.byID[e.ID()]; ok {
		c := st.sim.canon[i]
		if c != e && c.Version == e.Version && c.DigestHash() == e.DigestHash() {
			return c
		}
	}
	return e
}

func (st *simStore) Apply(now time.Time, e *locator.Entry) (locator.Outcome, error) {
	e = st.intern(e)
	o, err := st.MemStore.Apply(now, e)
	if o.Result == locator.Accepted {
		st.sim.accepted(st.node, e)
	}
	return o, err
}

func (st *simStore) ApplyBatch(now time.Time, es []*locator.Entry) ([]locator.Outcome, error) {
	for i := range es {
		es[i] = st.intern(es[i])
	}
	outs, err := st.MemStore.ApplyBatch(now, es)
	for i, o := range outs {
		if o.Result == locator.Accepted {
			st.sim.accepted(st.node, es[i])
		}
	}
	return outs, err
}

type memberView struct {
	sim  *simulation
	node int32
}

func (m memberView) Peers() []protocol.PeerID {
	s := m.sim
	n := len(s.members)
	p := int(s.pos[m.node])
	if p < 0 {
		return s.ring[:n:n]
	}
	return s.ring[p+1 : p+n : p+n]
}

type transport struct {
	sim  *simulation
	node int32
}

var errQueueFull = errors.New("sim: uplink queue full")

func (t transport) Send(to protocol.PeerID, msg []byte) error {
	s := t.sim
	dst, ok := s.index[to]
	if !ok {
		return fmt.Errorf("sim: unknown peer %q", to)
	}
	class := classOf(msg)
	qd := s.net.Dropped[simnet.DropQueue]
	at, ok := s.net.Send(s.q.Now(), int(t.node), int(dst), class, len(msg))
	if !ok {
		if s.net.Dropped[simnet.DropQueue] != qd {
			return errQueueFull
		}
		return nil // lost on the way: the sender cannot know
	}
	// The engine does not keep or reuse msg after Send (protocol.Transport).
	kind := uint8(evDeliver)
	if s.cpu != nil {
		kind = evArrive
	}
	s.q.Push(simnet.Event{At: at, Kind: kind, Class: uint8(class), Node: dst, From: t.node, Msg: msg})
	return nil
}

func newSimulation(sc *Scenario) (*simulation, error) {
	n := sc.Nodes
	region := []uint16(nil)
	if sc.Network.Regions > 1 {
		region = make([]uint16, n)
		for i := range region {
			region[i] = uint16(i % sc.Network.Regions)
		}
	}
	wide := simnet.Link{Latency: sc.Network.Latency.simnet(), Loss: sc.Network.Loss}
	if sc.Network.WideLatency != nil {
		wide = simnet.Link{Latency: sc.Network.WideLatency.simnet(), Loss: sc.Network.WideLoss}
	}
	net, err := simnet.New(simnet.Config{
		Nodes: n, Region: region,
		Local:         simnet.Link{Latency: sc.Network.Latency.simnet(), Loss: sc.Network.Loss},
		Wide:          wide,
		Bandwidth:     sc.Network.Bandwidth,
		MaxQueueDelay: sc.Network.MaxQueueDelay.D(),
		Kinds:         numClasses,
		Seed:          sc.Seed,
	})
	if err != nil {
		return nil, err
	}
	s := &simulation{
		sc: sc, pop: newPopulation(sc), net: net,
		index:    make(map[protocol.PeerID]int32, n),
		pos:      make([]int32, n),
		byID:     make(map[locator.ID]int32),
		byPers:   make(map[int32][]int32),
		rng:      rand.New(rand.NewPCG(sc.Seed, 0x574f524b)), // "WORK"
		curClass: classLocal,
		stopAt:   int64(sc.Duration),
		interval: int64(sc.SampleInterval),
	}
	if sc.Network.SharedCPUs > 0 {
		if s.cpu, err = simnet.NewCPUPool(sc.Network.SharedCPUs, sc.Network.ServiceTime.D()); err != nil {
			return nil, err
		}
	}
	// One signature verification per write however many replicas apply
	// it: the stores share a verified-encoding cache sized to the run.
	total := len(s.pop.steady)
	for _, b := range s.pop.bulk {
		total += len(b)
	}
	s.vcache = locator.NewVerifyCache(total + 1)
	s.publishEnd = int64(sc.Publish.Stop)
	if s.publishEnd == 0 {
		s.publishEnd = s.stopAt
	}
	s.windows = make([]window, (s.stopAt+s.interval-1)/s.interval)
	for i := range n {
		nd := &simNode{id: protocol.PeerID(fmt.Sprintf("node-%05d", i)), wakeAt: math.MaxInt64}
		s.nodes = append(s.nodes, nd)
		s.index[nd.id] = int32(i)
		if err := s.start(int32(i), nil); err != nil {
			return nil, err
		}
	}
	s.rebuildMembers()
	for i, p := range sc.Partitions {
		side := p.side(n, sc.Network.Regions)
		if err := net.AddPartition(simnet.Partition{From: int64(p.From), Until: int64(p.Until), Side: side}); err != nil {
			return nil, err
		}
		s.q.Push(simnet.Event{At: int64(p.Until), Kind: evHeal, Node: int32(i)})
	}
	for ci, c := range sc.Churn {
		k := int(math.Round(c.Fraction * float64(n)))
		perm := rand.New(rand.NewPCG(sc.Seed, 0x4348_0000+uint64(ci))).Perm(n - 1) // never node 0
		for _, j := range perm[:min(k, n-1)] {
			s.q.Push(simnet.Event{At: int64(c.At), Kind: evDown, Node: int32(j + 1), Gen: uint32(ci)})
		}
	}
	if sc.Publish.Rate > 0 && len(s.pop.steady) > 0 {
		s.q.Push(simnet.Event{At: int64(sc.Publish.Start), Kind: evPublish})
	}
	for i, b := range sc.BulkImports {
		s.q.Push(simnet.Event{At: int64(b.At), Kind: evBulk, Node: int32(i)})
	}
	if sc.Lookups > 0 {
		s.q.Push(simnet.Event{At: s.expDelay(sc.Lookups), Kind: evLookup})
	}
	for w := range s.windows {
		s.q.Push(simnet.Event{At: min(int64(w+1)*s.interval, s.stopAt), Kind: evSample, Node: int32(w)})
	}
	return s, nil
}

// start (re)creates node i's engine, with store st or a fresh one.
func (s *simulation) start(i int32, st *simStore) error {
	nd := s.nodes[i]
	if st == nil {
		ms, err := locator.NewMemStore(locator.Policy{DigestDepth: s.sc.DigestDepth, WatchBuffer: 1, VerifyCache: s.vcache})
		if err != nil {
			return err
		}
		st = &simStore{MemStore: ms, sim: s, node: i}
	}
	cfg := protocol.Config{
		Self:                nd.id,
		Fanout:              s.sc.Protocol.Fanout,
		PushInterval:        s.sc.Protocol.PushInterval.D(),
		AntiEntropyInterval: s.sc.Protocol.AntiEntropyInterval.D(),
		MaxMessageSize:      s.sc.Protocol.MaxMessageSize,
		MaxPushQueue:        s.sc.Protocol.MaxPushQueue,
		MaxHops:             s.sc.Protocol.MaxHops,
		RelayFanout:         s.sc.Protocol.RelayFanout,
		MaxSendRate:         s.sc.Protocol.MaxSendRate,
		StampThreshold:      s.sc.Protocol.StampThreshold,
		Rand:                nodeRand(s.sc.Seed, i, nd.rejoin),
	}
	eng, err := protocol.New(cfg, st, transport{s, i}, memberView{s, i})
	if err != nil {
		return fmt.Errorf("sim: node %d: %w", i, err)
	}
	nd.eng, nd.store, nd.up, nd.member = eng, st, true, true
	s.upCount++
	nd.gen++
	nd.wakeAt = s.q.Now()
	s.q.Push(simnet.Event{At: s.q.Now(), Kind: evTick, Node: i, Gen: nd.gen})
	return nil
}

// nodeRand returns node i's engine randomness for its incarnation: a PCG
// whose whole 128-bit state is derived by hashing, so that the nodes'
// streams are independent (seeds differing in a few bits would give PCG
// states sharing their low word, and correlated peer choices).
func nodeRand(seed uint64, i int32, incarnation int) *rand.Rand {
	b := derive("engine-rand", seed, uint64(i)<<32|uint64(uint32(incarnation)), 16)
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])))
}

func (s *simulation) rebuildMembers() {
	s.members = s.members[:0]
	for i, nd := range s.nodes {
		s.pos[i] = -1
		if nd.member {
			s.members = append(s.members, int32(i))
		}
	}
	s.ring = s.ring[:0]
	for r := 0; r < 2; r++ {
		for _, m := range s.members {
			s.ring = append(s.ring, s.nodes[m].id)
		}
	}
	for p, m := range s.members {
		s.pos[m] = int32(p)
	}
}

func (s *simulation) expDelay(rate float64) int64 {
	return int64(s.rng.ExpFloat64() / rate * float64(time.Second))
}

// schedule makes sure node i has a tick event at its engine's NextWake.
func (s *simulation) schedule(i int32) {
	nd := s.nodes[i]
	if !nd.up {
		return
	}
	w := nd.eng.NextWake()
	at := s.q.Now()
	if !w.IsZero() {
		at = max(int64(w.Sub(Epoch)), at)
	}
	if at >= nd.wakeAt {
		return
	}
	nd.gen++
	nd.wakeAt = at
	s.q.Push(simnet.Event{At: at, Kind: evTick, Node: i, Gen: nd.gen})
}

// accepted observes a new version stored at node.
func (s *simulation) accepted(node int32, e *locator.Entry) {
	idx, ok := s.byID[e.ID()]
	if !ok {
		return
	}
	es := &s.entries[idx]
	es.reach++
	now := s.q.Now()
	if s.curClass != classLocal {
		s.replica.add(time.Duration(now - es.pubAt))
		s.acc[s.curClass]++
	}
	s.windows[s.windowOf(now)].accepted++
	s.checkDone(idx)
	done := false
	for _, j := range s.healing {
		if h := &s.heals[j]; idx < h.k {
			h.held[node]++
			if h.held[node] == h.k {
				h.incomplete--
				done = h.finish(now) || done
			}
		}
	}
	if done {
		s.pruneHealing()
	}
}

// pruneHealing drops the converged heals from s.healing.
func (s *simulation) pruneHealing() {
	s.healing = slices.DeleteFunc(s.healing, func(j int) bool { return s.heals[j].doneAt >= 0 })
}

func (s *simulation) checkDone(idx int32) {
	es := &s.entries[idx]
	if es.doneAt < 0 && int(es.reach) >= s.upCount {
		now := s.q.Now()
		es.doneAt = now
		d := time.Duration(now - es.pubAt)
		s.allNodes.add(d)
		s.windows[s.windowOf(es.pubAt)].ttv.add(d)
	}
}

func (s *simulation) windowOf(t int64) int {
	return min(int(t/s.interval), len(s.windows)-1)
}

// publish creates involvement inv's entry at its agency and publishes it.
func (s *simulation) publish(inv involvement) {
	nd := s.nodes[inv.node]
	if !nd.up {
		s.skipped++
		return
	}
	if nd.holder == nil {
		h, err := holder(s.sc.Seed, inv.node, string(nd.id))
		if err != nil {
			s.errs = append(s.errs, err)
			return
		}
		nd.holder = h
	}
	now := s.now()
	e, err := nd.holder.Publish(lookupKey(s.sc.Seed, inv.person), sealKey(s.sc.Seed, inv.person),
		s.pop.kinds[inv.node], 1, now, now.Add(2*365*24*time.Hour))
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("sim: publish: %w", err))
		return
	}
	idx := int32(len(s.entries))
	s.entries = append(s.entries, entryState{pubAt: s.q.Now(), doneAt: -1, person: inv.person})
	s.canon = append(s.canon, e)
	s.byID[e.ID()] = idx
	s.byPers[inv.person] = append(s.byPers[inv.person], idx)
	s.windows[s.windowOf(s.q.Now())].published++
	s.curClass = classLocal
	if _, err := nd.eng.Publish(now, e); err != nil {
		s.errs = append(s.errs, fmt.Errorf("sim: publish at %s: %w", nd.id, err))
	}
	s.schedule(inv.node)
}

// probe looks up a random published person at a random up node and
// records the fraction of the true holders it returns.
func (s *simulation) probe() {
	if len(s.entries) == 0 || s.upCount == 0 {
		return
	}
	now := s.q.Now()
	idx := s.rng.IntN(len(s.entries))
	node := s.members[s.rng.IntN(len(s.members))]
	nd := s.nodes[node]
	if !nd.up {
		return
	}
	person := s.entries[idx].person
	var truth int
	for _, j := range s.byPers[person] {
		if s.entries[j].pubAt <= now-int64(recallGrace) {
			truth++
		}
	}
	if truth == 0 {
		return
	}
	got, err := nd.store.Lookup(s.now(), lookupKey(s.sc.Seed, person))
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	found := 0
	for _, e := range got {
		if j, ok := s.byID[e.ID()]; ok && s.entries[j].pubAt <= now-int64(recallGrace) {
			found++
		}
	}
	w := &s.windows[s.windowOf(now)]
	w.recallSum += float64(found) / float64(truth)
	w.recallN++
}

// forHeld calls fn with the index of every tracked entry node i holds.
func (s *simulation) forHeld(i int32, fn func(idx int32)) {
	_ = s.nodes[i].store.Range(func(e *locator.Entry) bool {
		if idx, ok := s.byID[e.ID()]; ok {
			fn(idx)
		}
		return true
	})
}

func (s *simulation) down(i int32, c Churn) {
	nd := s.nodes[i]
	if !nd.up {
		return
	}
	nd.up = false
	nd.downAt = s.q.Now()
	nd.gen++
	nd.wakeAt = math.MaxInt64
	s.upCount--
	s.forHeld(i, func(idx int32) { s.entries[idx].reach-- })
	// A node going down no longer counts: if it was the last one lacking
	// entries, the heal has converged among the up nodes.
	done := false
	for _, j := range s.healing {
		if h := &s.heals[j]; h.held[i] < h.k {
			h.incomplete--
			done = h.finish(s.q.Now()) || done
		}
	}
	if done {
		s.pruneHealing()
	}
	for idx := range s.entries {
		s.checkDone(int32(idx))
	}
	fd := c.FailureDetection.D()
	if fd == 0 {
		fd = 5 * time.Second
	}
	if c.Action == ChurnLeave {
		fd = 0
	}
	if fd == 0 {
		nd.member = false
		s.rebuildMembers()
	} else {
		s.q.Push(simnet.Event{At: s.q.Now() + int64(fd), Kind: evMemberRemove, Node: i})
	}
	if c.RejoinAfter > 0 {
		s.q.Push(simnet.Event{At: s.q.Now() + int64(c.RejoinAfter), Kind: evUp, Node: i, Gen: boolGen(c.KeepDisk)})
	}
}

func boolGen(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func (s *simulation) up(i int32, keepDisk bool) {
	nd := s.nodes[i]
	if nd.up {
		return
	}
	var st *simStore
	if keepDisk {
		st = nd.store
	} else {
		_ = nd.store.Close()
	}
	nd.rejoin++
	s.net.ResetNode(int(i), s.q.Now())
	if err := s.start(i, st); err != nil {
		s.errs = append(s.errs, err)
		return
	}
	s.rebuildMembers()
	s.announceUp(i)
	s.forHeld(i, func(idx int32) { s.entries[idx].reach++ })
	for _, j := range s.healing {
		h := &s.heals[j]
		var n int32
		s.forHeld(i, func(idx int32) {
			if idx < h.k {
				n++
			}
		})
		h.held[i] = n
		if n < h.k {
			h.incomplete++
		}
	}
}

// announceUp tells every member that node i joined again, unreachable since
// it went down, and node i that every member joined (memberlist reports
// each member to a node that joins).
func (s *simulation) announceUp(i int32) {
	nd := s.nodes[i]
	now := s.now()
	since := Epoch.Add(time.Duration(nd.downAt))
	for j, o := range s.nodes {
		if int32(j) == i || !o.member {
			continue
		}
		nd.eng.PeerAlive(now, o.id, time.Time{})
		if o.up {
			o.eng.PeerAlive(now, nd.id, since)
			s.schedule(int32(j))
		}
	}
}

func (s *simulation) heal(part int) {
	h := healTrack{part: part, at: s.q.Now(), k: int32(len(s.entries)), held: make([]int32, len(s.nodes)), doneAt: -1}
	for i, nd := range s.nodes {
		if !nd.up {
			continue
		}
		s.forHeld(int32(i), func(idx int32) {
			if idx < h.k {
				h.held[i]++
			}
		})
		if h.held[i] < h.k {
			h.incomplete++
		}
	}
	s.heals = append(s.heals, h)
	if !s.heals[len(s.heals)-1].finish(h.at) {
		s.healing = append(s.healing, len(s.heals)-1)
	}
	s.announceHeal(part)
}

// announceHeal tells every up node that the members across the healed cut
// are alive again, unreachable since the partition began, as memberlist
// does once its reconnect and gossip find them. The sim reports the heal
// at once: the real agents' rediscovery (a reconnect round, then a few
// gossip rounds) comes on top.
func (s *simulation) announceHeal(part int) {
	p := s.sc.Partitions[part]
	side := p.side(len(s.nodes), s.sc.Network.Regions)
	since := Epoch.Add(p.From.D())
	now := s.now()
	for i, a := range s.nodes {
		if !a.up {
			continue
		}
		for j, b := range s.nodes {
			if side[i] != side[j] && b.up && b.member {
				a.eng.PeerAlive(now, b.id, since)
			}
		}
		s.schedule(int32(i))
	}
}

func (s *simulation) sample(w int) {
	win := &s.windows[w]
	for c := range numClasses {
		win.sent[c] = s.net.TotalSent(c)
	}
	win.upNodes = s.upCount
}

// deliver hands a message that has arrived (and, with a CPU pool, been
// served) to its receiver's engine, unless the network drops it now.
func (s *simulation) deliver(ev *simnet.Event) {
	nd := s.nodes[ev.Node]
	ok := s.net.Deliver(ev.At, int(ev.From), int(ev.Node), int(ev.Class), len(ev.Msg), nd.up)
	if s.trace != nil {
		s.trace(ev, ok)
	}
	if !ok {
		return
	}
	s.curClass = int(ev.Class)
	_ = nd.eng.HandleMessage(s.now(), s.nodes[ev.From].id, ev.Msg) // bad messages are counted by the engine
	s.curClass = classLocal
	s.schedule(ev.Node)
}

// loop runs events until the end of the run or ctx is done.
func (s *simulation) loop(ctx context.Context) error {
	for {
		at, ok := s.q.Peek()
		if !ok || at > s.stopAt {
			s.q.AdvanceTo(s.stopAt)
			return nil
		}
		if s.events&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ev, _ := s.q.Pop()
		s.events++
		switch ev.Kind {
		case evTick:
			nd := s.nodes[ev.Node]
			if !nd.up || ev.Gen != nd.gen {
				continue
			}
			nd.wakeAt = math.MaxInt64
			nd.eng.Tick(s.now())
			s.schedule(ev.Node)
		case evArrive:
			// Queue for a shared processor; a message served at once (no
			// wait, no cost) is delivered now, without a second event, so
			// a zero service time orders events exactly as no pool does.
			if done := s.cpu.Serve(ev.At); done > ev.At {
				ev.Kind = evDeliver
				ev.At = done
				s.q.Push(ev)
				continue
			}
			s.deliver(&ev)
		case evDeliver:
			s.deliver(&ev)
		case evPublish:
			if s.steadyN < len(s.pop.steady) {
				s.publish(s.pop.steady[s.steadyN])
				s.steadyN++
				next := ev.At + s.expDelay(s.sc.Publish.Rate)
				if next < s.publishEnd && s.steadyN < len(s.pop.steady) {
					s.q.Push(simnet.Event{At: next, Kind: evPublish})
				}
			}
		case evBulk:
			for _, inv := range s.pop.bulk[ev.Node] {
				s.publish(inv)
			}
		case evLookup:
			s.probe()
			s.q.Push(simnet.Event{At: ev.At + s.expDelay(s.sc.Lookups), Kind: evLookup})
		case evSample:
			s.sample(int(ev.Node))
		case evDown:
			s.down(ev.Node, s.sc.Churn[ev.Gen])
		case evMemberRemove:
			if nd := s.nodes[ev.Node]; !nd.up && nd.member {
				nd.member = false
				s.rebuildMembers()
			}
		case evUp:
			s.up(ev.Node, ev.Gen == 1)
		case evHeal:
			s.heal(int(ev.Node))
		}
	}
}

// Run simulates sc and returns its report. If ctx is cancelled the run
// stops and the report covers the virtual time reached, marked Partial.
func Run(ctx context.Context, sc *Scenario) (*Report, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	wall0 := time.Now()
	s, err := newSimulation(sc)
	if err != nil {
		return nil, err
	}
	setup := time.Since(wall0)
	err = s.loop(ctx)
	partial := ""
	if err != nil {
		partial = fmt.Sprintf("stopped at virtual %v: %v", time.Duration(s.q.Now()), err)
	}
	wall := time.Since(wall0)
	if s.cpu != nil && s.cpu.Err() != nil {
		s.errs = append(s.errs, s.cpu.Err())
	}
	r := s.report(partial)
	events, errs := s.events, s.errs
	// The simulation's own heap is the live heap with it minus the live
	// heap once it is unreachable, measured back to back: a baseline
	// taken before the run would count whatever an earlier caller still
	// held then and let go during the run (the real agents' pools and
	// exiting goroutines, with --compare-real). Two collections first:
	// a sync.Pool's contents survive one as its victim cache.
	var with, without runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(s) // s is unreachable from here on
	runtime.GC()
	runtime.ReadMemStats(&without)
	r.Wall = &Wall{
		Seconds:         round3(wall.Seconds()),
		SetupSeconds:    round3(setup.Seconds()),
		EventsPerSecond: math.Round(float64(events) / wall.Seconds()),
		HeapBytes:       with.HeapAlloc,
		HeapPerNode:     int64(with.HeapAlloc-min(without.HeapAlloc, with.HeapAlloc)) / int64(sc.Nodes),
		SysBytes:        with.Sys,
		GoVersion:       runtime.Version(),
		GOOS:            runtime.GOOS,
		GOARCH:          runtime.GOARCH,
		CPUs:            runtime.NumCPU(),
	}
	if len(errs) > 0 {
		return r, fmt.Errorf("sim: %d internal errors, first: %w", len(errs), errs[0])
	}
	return r, nil
}

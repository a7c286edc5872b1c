package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/signpost-federation/signpost/locator"
)

// PeerID names a node of the federation.
type PeerID string

// Transport sends one message to a peer: asynchronous and best effort. It
// may drop the message; it must not block long, and it must not call back
// into the Engine. An error tells the engine the peer's queue is full or the
// peer unreachable: the engine stops sending that exchange (back-pressure)
// and relies on the next anti-entropy round. The engine does not keep msg
// after Send returns.
type Transport interface {
	Send(to PeerID, msg []byte) error
}

// Membership is the engine's view of the live peers, self excluded. For a
// reproducible run the order must be deterministic.
type Membership interface {
	Peers() []PeerID
}

// Config configures an Engine. Every node of a federation should use the
// same values except Self and Rand.
type Config struct {
	// Self is this node's id. Required.
	Self PeerID
	// Fanout is the number of random peers each push round sends fresh
	// entries (created here) to. Default 3.
	Fanout int
	// RelayFanout is the number of random peers a relay announces fresh
	// versions (stamps) to. 0 (the default) adapts to the membership:
	// ⌈ln N⌉ + 3 for N peers, at least Fanout, so that push alone misses
	// some node for only a few per cent of entries at any size (a node is
	// missed with probability ≈ e^-RelayFanout); anti-entropy covers the
	// rest. Announcements are stamps, so this costs ~57 bytes per peer.
	RelayFanout int
	// PushInterval is the period of push rounds. Default 200ms.
	PushInterval time.Duration
	// AntiEntropyInterval is the period at which this node starts a
	// reconciliation with one random peer. Default 10s.
	AntiEntropyInterval time.Duration
	// ExpireInterval is the period of Store.Expire. Default 1 minute.
	ExpireInterval time.Duration
	// MaxMessageSize bounds every message sent and received. Default
	// 64 KiB; at least 8 KiB.
	MaxMessageSize int
	// MaxPushQueue bounds the entries waiting to be pushed; beyond it new
	// versions are not pushed (Stats.PushDropped) and reach peers by
	// anti-entropy instead. Default 4096.
	MaxPushQueue int
	// MaxHops bounds how far a version is relayed by push to random peers;
	// beyond it a version is announced only to the ring successor, which
	// relays it on only if it lacked it (announce). Default 6.
	MaxHops int
	// StampThreshold: when either side of a differing digest bucket holds
	// at most this many entries, the sides exchange stamps instead of
	// descending the tree. Default 8.
	StampThreshold int
	// MaxReplyBytes bounds what the engine sends in answer to one received
	// message (or in one push round), so that one message cannot make it
	// send without limit; the rest waits for the next round. Default 4 MiB.
	MaxReplyBytes int
	// MaxSendRate, if positive, bounds the bytes per second the engine
	// sends in answer to anti-entropy and want messages (a token bucket
	// holding one second's worth, refilled from the now arguments). When
	// it is spent, answers stop short (Stats.RateLimited) and the rest
	// waits for a later round: the bound a production node sets so that a
	// bulk import cannot crowd out membership traffic. Default 0: no bound
	// beyond MaxReplyBytes.
	MaxSendRate int
	// PullTimeout is how long a pull (a Want sent because a peer announced
	// a version we lack) may go unanswered before the next announcer of
	// that version (or the last one again) is asked; it doubles with each
	// answer that does not come, and each wait is jittered to 1–1.5× so
	// that nodes that heard of a version together do not retry together.
	// After four timeouts the version is left to anti-entropy. Default
	// 500ms.
	PullTimeout time.Duration
	// MaxPulls bounds the pulls outstanding at once and MaxPullsPerPeer
	// those outstanding to any one peer: stamps announced beyond them are
	// ignored (Stats.PullsRefused; another announcer or anti-entropy
	// brings the version), so a flood of stamps, honest or not, cannot
	// become a flood of requests or of state. Defaults 4096 and 1024.
	MaxPulls, MaxPullsPerPeer int
	// RejoinDelay bounds the random delay before the engine reacts to a
	// peer joining or coming back (PeerAlive), so that the nodes that see
	// a heal together do not all react in the same instant. Default 1s.
	RejoinDelay time.Duration
	// RejoinExchanges bounds the anti-entropy exchanges one reaction to
	// membership starts, however many peers came back at once; and
	// reactions start at most one every 2×RejoinDelay. Default 2.
	RejoinExchanges int
	// Rand is the engine's only source of randomness (peer choice, session
	// ids, jitter). Required; the harness seeds it.
	Rand *rand.Rand
}

// DefaultConfig returns the defaults; Self and Rand must still be set.
func DefaultConfig() Config {
	return Config{
		Fanout:              3,
		PushInterval:        200 * time.Millisecond,
		AntiEntropyInterval: 10 * time.Second,
		ExpireInterval:      time.Minute,
		MaxMessageSize:      64 << 10,
		MaxPushQueue:        4096,
		MaxHops:             6,
		StampThreshold:      8,
		MaxReplyBytes:       4 << 20,
		PullTimeout:         500 * time.Millisecond,
		MaxPulls:            4096,
		MaxPullsPerPeer:     1024,
		RejoinDelay:         time.Second,
		RejoinExchanges:     2,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	def := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	defd := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&c.Fanout, d.Fanout)
	defd(&c.PushInterval, d.PushInterval)
	defd(&c.AntiEntropyInterval, d.AntiEntropyInterval)
	defd(&c.ExpireInterval, d.ExpireInterval)
	def(&c.MaxMessageSize, d.MaxMessageSize)
	def(&c.MaxPushQueue, d.MaxPushQueue)
	def(&c.MaxHops, d.MaxHops)
	def(&c.StampThreshold, d.StampThreshold)
	def(&c.MaxReplyBytes, d.MaxReplyBytes)
	defd(&c.PullTimeout, d.PullTimeout)
	def(&c.MaxPulls, d.MaxPulls)
	def(&c.MaxPullsPerPeer, d.MaxPullsPerPeer)
	defd(&c.RejoinDelay, d.RejoinDelay)
	def(&c.RejoinExchanges, d.RejoinExchanges)
	var errs []error
	if c.Self == "" {
		errs = append(errs, errors.New("self is empty"))
	}
	if c.Rand == nil {
		errs = append(errs, errors.New("rand is nil"))
	}
	if c.Fanout < 1 || c.MaxPushQueue < 1 || c.StampThreshold < 1 || c.RelayFanout < 0 {
		errs = append(errs, errors.New("fanout, push queue and stamp threshold must be positive"))
	}
	if c.MaxPulls < 1 || c.MaxPullsPerPeer < 1 || c.RejoinExchanges < 1 {
		errs = append(errs, errors.New("pull bounds and rejoin exchanges must be positive"))
	}
	if c.MaxHops < 1 || c.MaxHops >= AEHops {
		errs = append(errs, fmt.Errorf("MaxHops %d outside 1..%d", c.MaxHops, AEHops-1))
	}
	if c.PushInterval < 0 || c.AntiEntropyInterval < 0 || c.ExpireInterval < 0 || c.PullTimeout < 0 || c.RejoinDelay < 0 {
		errs = append(errs, errors.New("negative interval"))
	}
	if c.MaxMessageSize < 8<<10 {
		errs = append(errs, fmt.Errorf("MaxMessageSize %d < 8 KiB", c.MaxMessageSize))
	}
	if c.MaxSendRate < 0 {
		errs = append(errs, errors.New("negative MaxSendRate"))
	}
	if c.MaxReplyBytes < c.MaxMessageSize {
		errs = append(errs, errors.New("MaxReplyBytes < MaxMessageSize"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("protocol: invalid config: %w", err)
	}
	return c, nil
}

// ClassStats counts the traffic of one class.
type ClassStats struct {
	MsgsSent, BytesSent, MsgsReceived, BytesReceived uint64
}

// Stats are the engine's counters since New.
type Stats struct {
	// Push is rumour mongering (Entries and Want with Hops < AEHops, Have);
	// AntiEntropy is reconciliation (Nodes, Stamps, and Entries and Want
	// with AEHops).
	Push, AntiEntropy ClassStats
	// Entries received in Entries messages, and what the store did.
	EntriesReceived, EntriesAccepted, EntriesDuplicate, EntriesRejected uint64
	// PushQueued counts versions queued for push; PushDropped those not
	// queued because the queue was full.
	PushQueued, PushDropped uint64
	// SessionsStarted counts anti-entropy exchanges this node began.
	SessionsStarted uint64
	// SendErrors counts Transport.Send failures; BadMessages received
	// messages that did not decode or made no sense.
	SendErrors, BadMessages uint64
	// BudgetExhausted counts replies cut short by MaxReplyBytes;
	// RateLimited those cut short by MaxSendRate.
	BudgetExhausted, RateLimited uint64
	// Pulls counts versions asked for because a peer announced them;
	// PullRetries the further requests for one (a hedge to a second
	// announcer, or a retry after PullTimeout); PullsAbandoned those left to anti-entropy once
	// no announcer was left to ask; PullsRefused announced stamps not
	// pulled because MaxPulls or MaxPullsPerPeer was reached.
	Pulls, PullRetries, PullsAbandoned, PullsRefused uint64
	// Rejoins counts PeerAlive calls; RejoinExchanges the anti-entropy
	// exchanges they started; Reannounced the stamps of versions created
	// here sent again to a peer that was unreachable when they were new.
	Rejoins, RejoinExchanges, Reannounced uint64
}

// Engine is one node's dissemination and anti-entropy core.
//
// It is NOT safe for concurrent use: one harness goroutine calls Publish,
// HandleMessage and Tick. It starts no goroutines, reads no clock and uses
// no global randomness: time comes from the now arguments, randomness from
// Config.Rand.
type Engine struct {
	cfg   Config
	store locator.Store
	tr    Transport
	mem   Membership

	queue      []*locator.Entry // created here, waiting for the push round
	started    bool
	nextPush   time.Time
	nextAE     time.Time
	nextExpire time.Time
	stats      Stats
	entryMax   int // how many bytes of entries fit in one message

	// Token bucket of MaxSendRate.
	tokens     float64
	lastRefill time.Time

	pulls  pullTable
	rejoin rejoinState
	// published is the log of versions created here, oldest first, so
	// that those created while a peer was unreachable can be announced to
	// it again when it comes back (bounded: maxPublishedLog).
	published []publishedRec
}

// New returns an engine that replicates store with the peers of mem over
// tr. cfg is copied, defaulted and validated.
func New(cfg Config, store locator.Store, tr Transport, mem Membership) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if store == nil || tr == nil || mem == nil {
		return nil, errors.New("protocol: nil store, transport or membership")
	}
	g := &Engine{cfg: cfg, store: store, tr: tr, mem: mem, entryMax: cfg.MaxMessageSize - 64}
	g.pulls.init()
	return g, nil
}

// Stats returns a copy of the counters.
func (g *Engine) Stats() Stats { return g.stats }

// QueueLen returns the number of versions waiting to be pushed.
func (g *Engine) QueueLen() int { return len(g.queue) }

// Publish applies a locally created entry to the store and, if accepted,
// queues it for push.
func (g *Engine) Publish(now time.Time, e *locator.Entry) (locator.Outcome, error) {
	o, err := g.store.Apply(now, e)
	if err != nil {
		return o, fmt.Errorf("protocol: publish: %w", err)
	}
	if o.Result == locator.Accepted {
		g.enqueue(e)
		g.logPublished(now, e.ID())
	}
	return o, nil
}

// PublishBatch is Publish for many entries, applied to the store in one
// transaction; the accepted ones are queued for push.
func (g *Engine) PublishBatch(now time.Time, es []*locator.Entry) ([]locator.Outcome, error) {
	outs, err := g.store.ApplyBatch(now, es)
	if err != nil {
		return nil, fmt.Errorf("protocol: publish: %w", err)
	}
	for i, o := range outs {
		if o.Result == locator.Accepted {
			g.enqueue(es[i])
			g.logPublished(now, es[i].ID())
		}
	}
	return outs, nil
}

func (g *Engine) enqueue(e *locator.Entry) {
	if len(g.queue) >= g.cfg.MaxPushQueue {
		g.stats.PushDropped++
		return
	}
	g.stats.PushQueued++
	g.queue = append(g.queue, e)
}

// NextWake returns when Tick next has work to do; the zero time before the
// first Tick.
func (g *Engine) NextWake() time.Time {
	if !g.started {
		return time.Time{}
	}
	t := g.nextAE
	if g.nextExpire.Before(t) {
		t = g.nextExpire
	}
	if len(g.queue) > 0 && g.nextPush.Before(t) {
		t = g.nextPush
	}
	if w := g.pulls.nextDeadline(); !w.IsZero() && w.Before(t) {
		t = w
	}
	if w := g.rejoin.nextWake(); !w.IsZero() && w.Before(t) {
		t = w
	}
	return t
}

// Tick runs the periodic work that is due at now: a push round, the start of
// an anti-entropy exchange, expiry.
func (g *Engine) Tick(now time.Time) {
	if !g.started {
		g.started = true
		g.nextPush = now
		// Spread the first exchange over one interval so that nodes
		// started together do not reconcile in lockstep.
		g.nextAE = now.Add(time.Duration(g.cfg.Rand.Int64N(int64(g.cfg.AntiEntropyInterval) + 1)))
		g.nextExpire = now.Add(g.cfg.ExpireInterval)
	}
	// The push round is due PushInterval after the last one that sent
	// something: a node that was idle pushes what it accepts at once.
	if !now.Before(g.nextPush) && len(g.queue) > 0 {
		g.pushRound()
		g.nextPush = now.Add(g.cfg.PushInterval)
	}
	if !now.Before(g.nextAE) {
		g.StartAntiEntropy()
		g.nextAE = now.Add(g.cfg.AntiEntropyInterval)
	}
	if !now.Before(g.nextExpire) {
		_, _ = g.store.Expire(now) // a failing store fails its next Apply too
		g.nextExpire = now.Add(g.cfg.ExpireInterval)
	}
	g.retryPulls(now)
	g.react(now)
}

// pickPeers returns up to n distinct random peers.
func (g *Engine) pickPeers(n int) []PeerID {
	return g.pickFrom(g.mem.Peers(), n)
}

func (g *Engine) pickFrom(peers []PeerID, n int) []PeerID {
	if len(peers) <= n {
		return append([]PeerID(nil), peers...)
	}
	out := make([]PeerID, 0, n)
	chosen := make(map[int]bool, n)
	for len(out) < n {
		i := g.cfg.Rand.IntN(len(peers))
		if !chosen[i] {
			chosen[i] = true
			out = append(out, peers[i])
		}
	}
	return out
}

// pushRound sends the entries created here that wait in the queue, in
// full, to Fanout random peers (KindEntries, hops 1), and their stamps to
// the ring successor (see announce) unless it was one of them.
func (g *Engine) pushRound() {
	entries := &Message{Kind: KindEntries, Hops: 1}
	entBytes, n := 0, 0
	for ; n < len(g.queue); n++ {
		sz := 2 + g.queue[n].Size()
		if entBytes+sz > g.entryMax || n == maxListItems {
			break
		}
		entBytes += sz
		entries.Entries = append(entries.Entries, g.queue[n].Encode())
	}
	batch := g.queue[:n]
	g.queue = g.queue[n:]
	if len(g.queue) == 0 {
		g.queue = nil
	}
	peers := g.mem.Peers()
	succ, hasSucc := successor(peers, g.cfg.Self)
	buf := entries.Encode()
	for _, p := range g.pickFrom(peers, g.cfg.Fanout) {
		g.send(p, KindEntries, 1, buf)
		hasSucc = hasSucc && p != succ
	}
	if hasSucc {
		have := &Message{Kind: KindHave, Hops: 1}
		for _, e := range batch {
			have.Stamps = append(have.Stamps, locator.StampOf(e))
		}
		g.send(succ, KindHave, 0, have.Encode())
	}
	clear(batch)
}

// announce sends the stamps of versions just accepted (or created) here,
// in one Have message with the given hop count: when relay is set, to
// RelayFanout random peers, and in any case to the ring successor, the peer
// after this node in id order.
//
// Relays announce at once, not in the next push round: a stamp costs the
// same whenever it goes, and waiting up to PushInterval at every hop put
// most of a version's delay in the queues.
//
// The ring successor hears of every version this node accepts, even past
// MaxHops. Random relaying misses a node with probability about
// e^-RelayFanout, so at thousands of nodes some node misses nearly every
// version, and only anti-entropy used to find it. With the ring a node is
// missed only if its predecessor was missed too, and a run of misses is
// filled one successor after another (a node that already holds the
// version does not announce it again). The cost is one stamp per node per
// version.
func (g *Engine) announce(hops uint8, es []*locator.Entry, relay bool) {
	peers := g.mem.Peers()
	succ, hasSucc := successor(peers, g.cfg.Self)
	m := &Message{Kind: KindHave, Hops: hops}
	send := func() {
		buf := m.Encode()
		succDone := false
		if relay {
			for _, p := range g.pickFrom(peers, g.relayFanout(len(peers))) {
				succDone = succDone || p == succ
				g.send(p, KindHave, 0, buf)
			}
		}
		if hasSucc && !succDone {
			g.send(succ, KindHave, 0, buf)
		}
		m.Stamps = m.Stamps[:0]
	}
	for _, e := range es {
		m.Stamps = append(m.Stamps, locator.StampOf(e))
		if (len(m.Stamps)+1)*stampLen > g.entryMax || len(m.Stamps) == maxListItems {
			send()
		}
	}
	if len(m.Stamps) > 0 {
		send()
	}
}

// successor returns the peer that follows self in cyclic id order. peers
// is sorted by id, or a rotation of that order (the sim's shared ring);
// any other order still gives a peer, just not a consistent ring.
func successor(peers []PeerID, self PeerID) (PeerID, bool) {
	n := len(peers)
	if n == 0 {
		return "", false
	}
	// k: where the ascending run that holds the smallest id starts.
	k := 0
	if peers[0] > peers[n-1] {
		k = sort.Search(n, func(i int) bool { return peers[i] < peers[0] })
	}
	if i := k + sort.Search(n-k, func(i int) bool { return peers[k+i] > self }); i < n {
		return peers[i], true
	}
	if i := sort.Search(k, func(i int) bool { return peers[i] > self }); i < k {
		return peers[i], true
	}
	return peers[k], true
}

// relayFanout returns RelayFanout, or ⌈ln N⌉ + 3 (at least Fanout) for N
// live peers.
func (g *Engine) relayFanout(n int) int {
	if g.cfg.RelayFanout > 0 {
		return g.cfg.RelayFanout
	}
	return max(g.cfg.Fanout, int(math.Ceil(math.Log(float64(n+1))))+3)
}

// class returns the stats of a message's class.
func (g *Engine) class(kind Kind, hops uint8) *ClassStats {
	switch kind {
	case KindNodes, KindStamps:
		return &g.stats.AntiEntropy
	case KindEntries, KindWant:
		if hops == AEHops {
			return &g.stats.AntiEntropy
		}
	}
	return &g.stats.Push
}

func (g *Engine) send(to PeerID, kind Kind, hops uint8, msg []byte) bool {
	c := g.class(kind, hops)
	c.MsgsSent++
	c.BytesSent += uint64(len(msg))
	if err := g.tr.Send(to, msg); err != nil {
		g.stats.SendErrors++
		return false
	}
	return true
}

// StartAntiEntropy begins a reconciliation with one random peer now (Tick
// calls it every AntiEntropyInterval). It sends the digest root; the rest of
// the exchange is driven by the messages the two sides trade.
func (g *Engine) StartAntiEntropy() {
	peers := g.pickPeers(1)
	if len(peers) == 0 {
		return
	}
	g.startAntiEntropyWith(peers[0])
}

func (g *Engine) startAntiEntropyWith(peer PeerID) {
	peers := []PeerID{peer}
	g.stats.SessionsStarted++
	m := &Message{Kind: KindNodes, Session: g.cfg.Rand.Uint64(), Depth: uint8(g.store.DigestDepth()),
		Nodes: []Node{{Index: 0, Bucket: g.store.Bucket(0, 0)}}}
	g.send(peers[0], KindNodes, 0, m.Encode())
}

// HandleMessage processes one message from a peer. Garbage is rejected with
// an error wrapping ErrBadMessage (and counted); it never panics.
func (g *Engine) HandleMessage(now time.Time, from PeerID, msg []byte) error {
	m, err := DecodeMessage(msg, g.cfg.MaxMessageSize)
	if err != nil {
		g.stats.BadMessages++
		return fmt.Errorf("protocol: message from %s: %w", from, err)
	}
	c := g.class(m.Kind, m.Hops)
	c.MsgsReceived++
	c.BytesReceived += uint64(len(msg))
	r := &replier{g: g, to: from, budget: g.cfg.MaxReplyBytes, now: now}
	switch m.Kind {
	case KindEntries:
		err = g.onEntries(now, m)
	case KindHave:
		err = g.onHave(now, from, m)
	case KindWant:
		err = g.onWant(r, m)
	case KindNodes:
		err = g.onNodes(r, m)
	case KindStamps:
		err = g.onStamps(r, m)
	}
	if err != nil {
		if errors.Is(err, ErrBadMessage) {
			g.stats.BadMessages++
		}
		return fmt.Errorf("protocol: %s message from %s: %w", m.Kind, from, err)
	}
	return nil
}

func (g *Engine) onEntries(now time.Time, m *Message) error {
	es := make([]*locator.Entry, 0, len(m.Entries))
	for _, b := range m.Entries {
		g.stats.EntriesReceived++
		e, err := locator.DecodeEntry(b)
		if err != nil {
			g.stats.EntriesRejected++
			g.store.NoteRejected(locator.ReasonOf(err))
			continue
		}
		es = append(es, e)
	}
	if len(es) == 0 {
		return nil
	}
	outs, err := g.store.ApplyBatch(now, es)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	var relayed []*locator.Entry
	for i, o := range outs {
		if len(g.pulls.byID) > 0 {
			g.pullArrived(es[i])
		}
		switch o.Result {
		case locator.Accepted:
			g.stats.EntriesAccepted++
			if m.Hops != AEHops {
				relayed = append(relayed, es[i])
			}
		case locator.Duplicate:
			g.stats.EntriesDuplicate++
		default:
			g.stats.EntriesRejected++
		}
	}
	if len(relayed) > 0 {
		// Past MaxHops only the ring successor hears of it.
		g.announce(min(m.Hops+1, uint8(g.cfg.MaxHops)), relayed, int(m.Hops) < g.cfg.MaxHops)
	}
	return nil
}

// lacks reports whether the peer's stamp s is newer than what we hold.
func (g *Engine) lacks(s locator.Stamp) bool {
	e, ok, err := g.store.Get(s.ID)
	if err != nil || !ok {
		return err == nil
	}
	return s.Newer(locator.StampOf(e))
}

func (g *Engine) onWant(r *replier, m *Message) error {
	out := &Message{Kind: KindEntries, Session: m.Session, Hops: m.Hops}
	for _, id := range m.IDs {
		e, ok, err := g.store.Get(id)
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		if ok && !r.addEntry(out, e) {
			break
		}
	}
	r.flushEntries(out)
	return nil
}

// onNodes compares the peer's buckets with ours and answers, bucket by
// bucket, with children (descend), our stamps (the smaller side lists), or
// our own bucket (so that the smaller side lists).
func (g *Engine) onNodes(r *replier, m *Message) error {
	depth := min(int(m.Depth), g.store.DigestDepth())
	level := int(m.Level)
	if level > depth {
		return fmt.Errorf("level %d below common depth %d: %w", level, depth, ErrBadMessage)
	}
	myDepth := uint8(g.store.DigestDepth())
	children := &Message{Kind: KindNodes, Session: m.Session, Depth: myDepth, Level: uint8(level + 1)}
	echo := &Message{Kind: KindNodes, Session: m.Session, Depth: myDepth, Level: uint8(level)}
	maxNodes := min((g.cfg.MaxMessageSize-64)/nodeLen, maxListItems)
	for _, n := range m.Nodes {
		mine := g.store.Bucket(level, n.Index)
		if mine == n.Bucket {
			continue
		}
		small := int(min(mine.Count, n.Bucket.Count)) <= g.cfg.StampThreshold
		switch {
		case level == depth || small:
			if mine.Count <= n.Bucket.Count {
				if !r.sendStamps(m.Session, myDepth, level, n.Index) {
					return nil
				}
			} else {
				echo.Nodes = append(echo.Nodes, Node{Index: n.Index, Bucket: mine})
				if len(echo.Nodes) == maxNodes {
					r.sendNodes(echo)
				}
			}
		default:
			for c := range uint32(16) {
				idx := n.Index*16 + c
				children.Nodes = append(children.Nodes, Node{Index: idx, Bucket: g.store.Bucket(level+1, idx)})
			}
			if len(children.Nodes)+16 > maxNodes {
				r.sendNodes(children)
			}
		}
	}
	r.sendNodes(echo)
	r.sendNodes(children)
	return nil
}

// onStamps merges the peer's stamps for [From, To] with ours: it asks for
// what the peer has newer and sends what we have newer or the peer lacks.
func (g *Engine) onStamps(r *replier, m *Message) error {
	depth := min(int(m.Depth), g.store.DigestDepth())
	level := int(m.Level)
	if level > depth {
		return fmt.Errorf("level %d below common depth %d: %w", level, depth, ErrBadMessage)
	}
	lo, hi := locator.BucketBounds(level, m.Index)
	if bytes.Compare(m.From[:], lo[:]) < 0 || bytes.Compare(m.To[:], hi[:]) > 0 || bytes.Compare(m.From[:], m.To[:]) > 0 {
		return fmt.Errorf("stamp range outside its bucket: %w", ErrBadMessage)
	}
	prev := m.From
	for i, s := range m.Stamps {
		if bytes.Compare(s.ID[:], m.From[:]) < 0 || bytes.Compare(s.ID[:], m.To[:]) > 0 ||
			(i > 0 && bytes.Compare(s.ID[:], prev[:]) <= 0) {
			return fmt.Errorf("stamps out of order or range: %w", ErrBadMessage)
		}
		prev = s.ID
	}
	want := &Message{Kind: KindWant, Session: m.Session, Hops: AEHops}
	give := &Message{Kind: KindEntries, Session: m.Session, Hops: AEHops}
	theirs := m.Stamps
	from := m.From
	const page = 1024
	giving := true
	for {
		mine, err := g.store.Stamps(level, m.Index, from, page)
		if err != nil {
			return fmt.Errorf("stamps: %w", err)
		}
		done := len(mine) < page
		for _, s := range mine {
			if bytes.Compare(s.ID[:], m.To[:]) > 0 || !giving {
				// Past the range; or the budget is spent, and the
				// rest of the comparison is done per stamp below
				// instead of scanning our whole range.
				done = true
				break
			}
			// Their stamps below s.ID that we do not have.
			for len(theirs) > 0 && bytes.Compare(theirs[0].ID[:], s.ID[:]) < 0 {
				want.IDs = append(want.IDs, theirs[0].ID)
				theirs = theirs[1:]
			}
			peerHas := len(theirs) > 0 && theirs[0].ID == s.ID
			var t locator.Stamp
			if peerHas {
				t = theirs[0]
				theirs = theirs[1:]
				if t.Newer(s) {
					want.IDs = append(want.IDs, t.ID)
				}
			}
			if giving && (!peerHas || s.Newer(t)) {
				e, ok, err := g.store.Get(s.ID)
				if err != nil {
					return fmt.Errorf("get: %w", err)
				}
				if ok && !r.addEntry(give, e) {
					giving = false
				}
			}
		}
		if done || len(mine) == 0 {
			break
		}
		last := mine[len(mine)-1].ID
		from = nextID(last)
		if from == (locator.ID{}) {
			break
		}
	}
	for _, t := range theirs {
		if giving || g.lacks(t) {
			want.IDs = append(want.IDs, t.ID)
		}
	}
	r.flushEntries(give)
	r.sendIDs(want)
	return nil
}

// nextID returns id+1 (zero on overflow).
func nextID(id locator.ID) locator.ID {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			break
		}
	}
	return id
}

// takeTokens spends n bytes of the MaxSendRate bucket at now, if there
// are enough.
func (g *Engine) takeTokens(now time.Time, n int) bool {
	if g.cfg.MaxSendRate <= 0 {
		return true
	}
	capacity := float64(max(g.cfg.MaxSendRate, g.cfg.MaxMessageSize))
	if g.lastRefill.IsZero() {
		g.tokens = capacity
	} else if dt := now.Sub(g.lastRefill).Seconds(); dt > 0 {
		g.tokens = min(capacity, g.tokens+dt*float64(g.cfg.MaxSendRate))
	}
	if now.After(g.lastRefill) {
		g.lastRefill = now
	}
	if float64(n) > g.tokens {
		return false
	}
	g.tokens -= float64(n)
	return true
}

// replier sends the answers to one message within a byte budget.
type replier struct {
	g      *Engine
	to     PeerID
	now    time.Time
	budget int
	failed bool
	bytes  int // pending entry bytes in the current Entries message
}

func (r *replier) send(kind Kind, hops uint8, b []byte) bool {
	if r.failed {
		return false
	}
	if len(b) > r.budget {
		r.g.stats.BudgetExhausted++
		r.failed = true
		return false
	}
	if !r.g.takeTokens(r.now, len(b)) {
		r.g.stats.RateLimited++
		r.failed = true
		return false
	}
	r.budget -= len(b)
	if !r.g.send(r.to, kind, hops, b) {
		r.failed = true // back-pressure: stop this exchange
		return false
	}
	return true
}

// addEntry appends e to out, flushing out first when it is full. It
// returns false once nothing more can be sent.
func (r *replier) addEntry(out *Message, e *locator.Entry) bool {
	if r.failed {
		return false
	}
	sz := 2 + e.Size()
	if r.bytes+sz > r.g.entryMax || len(out.Entries) == maxListItems {
		r.flushEntries(out)
		if r.failed {
			return false
		}
	}
	if r.bytes+sz > r.budget {
		r.g.stats.BudgetExhausted++
		r.failed = true
		return false
	}
	out.Entries = append(out.Entries, e.Encode())
	r.bytes += sz
	return true
}

func (r *replier) flushEntries(out *Message) {
	if len(out.Entries) > 0 {
		r.send(KindEntries, out.Hops, out.Encode())
	}
	out.Entries = out.Entries[:0]
	r.bytes = 0
}

func (r *replier) sendIDs(m *Message) {
	per := min((r.g.cfg.MaxMessageSize-64)/idLen, maxListItems)
	ids := m.IDs
	for len(ids) > 0 && !r.failed {
		n := min(per, len(ids))
		part := *m
		part.IDs = ids[:n]
		r.send(KindWant, m.Hops, part.Encode())
		ids = ids[n:]
	}
}

func (r *replier) sendNodes(m *Message) {
	if len(m.Nodes) > 0 {
		r.send(KindNodes, 0, m.Encode())
	}
	m.Nodes = m.Nodes[:0]
}

// sendStamps lists our stamps of bucket (level, index), in messages that
// each cover a contiguous id range, the first starting at the bucket's
// lowest id and the last ending at its highest.
func (r *replier) sendStamps(session uint64, depth uint8, level int, index uint32) bool {
	per := min((r.g.cfg.MaxMessageSize-128)/stampLen, maxListItems)
	lo, hi := locator.BucketBounds(level, index)
	from := lo
	for !r.failed {
		ss, err := r.g.store.Stamps(level, index, from, per+1)
		if err != nil {
			r.failed = true
			return false
		}
		m := &Message{Kind: KindStamps, Session: session, Depth: depth, Level: uint8(level), Index: index, From: from, To: hi}
		last := len(ss) <= per
		if !last {
			ss = ss[:per]
			m.To = ss[per-1].ID
		}
		m.Stamps = ss
		if !r.send(KindStamps, 0, m.Encode()) {
			return false
		}
		if last {
			return true
		}
		from = nextID(m.To)
	}
	return false
}

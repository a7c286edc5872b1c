package protocol_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// sentTo decodes what the recorder sent to peer, of the given kind, and
// forgets everything it recorded.
func sentTo(t *testing.T, tr *recorder, peer protocol.PeerID, kind protocol.Kind) []*protocol.Message {
	t.Helper()
	var out []*protocol.Message
	for i, b := range tr.sent {
		m, err := protocol.DecodeMessage(b, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		if tr.to[i] == peer && m.Kind == kind {
			out = append(out, m)
		}
	}
	tr.sent, tr.to = nil, nil
	return out
}

func wantedIDs(ms []*protocol.Message) []locator.ID {
	var ids []locator.ID
	for _, m := range ms {
		ids = append(ids, m.IDs...)
	}
	return ids
}

func have(hops uint8, es ...*locator.Entry) []byte {
	m := &protocol.Message{Kind: protocol.KindHave, Hops: hops}
	for _, e := range es {
		m.Stamps = append(m.Stamps, locator.StampOf(e))
	}
	return m.Encode()
}

func entriesMsg(hops uint8, encs ...[]byte) []byte {
	return (&protocol.Message{Kind: protocol.KindEntries, Hops: hops, Entries: encs}).Encode()
}

// TestPullAsksOnceThenTheNextAnnouncer: a version announced by several
// peers is asked of the first only; when it does not answer within the
// (jittered) timeout the next announcer is asked; once it arrives nothing
// more is asked, and it is relayed.
func TestPullAsksOnceThenTheNextAnnouncer(t *testing.T) {
	tr := &recorder{}
	g, s := newEngine(t, tr, peers{"a", "b", "c"}, nil)
	e := publish(t, testHolder(t, 1), 1, 1)
	for _, p := range []protocol.PeerID{"a", "b", "c"} {
		if err := g.HandleMessage(t0, p, have(2, e)); err != nil {
			t.Fatal(err)
		}
	}
	if got := wantedIDs(sentTo(t, tr, "a", protocol.KindWant)); len(got) != 1 || got[0] != e.ID() {
		t.Fatalf("asked a for %v", got)
	}
	if st := g.Stats(); st.Pulls != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Not yet overdue: nothing is asked again.
	g.Tick(t0.Add(protocol.DefaultConfig().PullTimeout - time.Millisecond))
	tr.sent, tr.to = nil, nil
	wake := g.NextWake()
	if d := wake.Sub(t0); d < protocol.DefaultConfig().PullTimeout || d > protocol.DefaultConfig().PullTimeout*3/2 {
		t.Fatalf("next wake %v after the request, want within the jittered timeout", d)
	}
	g.Tick(wake)
	if got := wantedIDs(sentTo(t, tr, "b", protocol.KindWant)); len(got) != 1 || got[0] != e.ID() {
		t.Fatalf("after the timeout asked b for %v", got)
	}
	if err := g.HandleMessage(wake, "b", entriesMsg(2, e.Encode())); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(e.ID()); !ok {
		t.Fatal("pulled entry not stored")
	}
	if n, _ := g.Outstanding(); n != 0 {
		t.Fatalf("%d pulls outstanding after arrival", n)
	}
	// It is relayed (announced) at once, and never asked for again.
	relayed := 0
	for i, b := range tr.sent {
		if m, _ := protocol.DecodeMessage(b, 64<<10); m.Kind == protocol.KindHave && m.Hops == 3 {
			relayed++
		} else if m.Kind == protocol.KindWant {
			t.Fatalf("asked %s again", tr.to[i])
		}
	}
	if relayed == 0 {
		t.Fatal("pulled version not relayed")
	}
	g.Tick(wake.Add(time.Minute))
	if ids := wantedIDs(sentTo(t, tr, "c", protocol.KindWant)); len(ids) != 0 {
		t.Fatalf("asked c for %v after arrival", ids)
	}
}

// TestPulledEntryIsVerified: an announcer that answers a pull with a
// forged entry gets nothing stored; the pull goes on to the next announcer,
// whose genuine entry is stored.
func TestPulledEntryIsVerified(t *testing.T) {
	tr := &recorder{}
	g, s := newEngine(t, tr, peers{"liar", "honest"}, nil)
	e := publish(t, testHolder(t, 1), 1, 1)
	forged := bytes.Clone(e.Encode())
	forged[len(forged)-1] ^= 1 // the signature
	_ = g.HandleMessage(t0, "liar", have(2, e))
	_ = g.HandleMessage(t0, "honest", have(2, e))
	if got := wantedIDs(sentTo(t, tr, "liar", protocol.KindWant)); len(got) != 1 {
		t.Fatalf("asked the first announcer for %v", got)
	}
	_ = g.HandleMessage(t0.Add(time.Millisecond), "liar", entriesMsg(2, forged))
	overdue := t0.Add(protocol.DefaultConfig().PullTimeout * 3 / 2)
	if _, ok, _ := s.Get(e.ID()); ok {
		t.Fatal("forged entry stored")
	}
	if c := s.Counters(); c.Rejected[locator.ReasonBadSignature] != 1 {
		t.Fatalf("counters %+v", c)
	}
	if n, _ := g.Outstanding(); n != 1 {
		t.Fatalf("forged answer ended the pull (%d outstanding)", n)
	}
	g.Tick(overdue)
	if got := wantedIDs(sentTo(t, tr, "honest", protocol.KindWant)); len(got) != 1 || got[0] != e.ID() {
		t.Fatalf("next announcer asked for %v", got)
	}
	_ = g.HandleMessage(overdue, "honest", entriesMsg(2, e.Encode()))
	got, ok, _ := s.Get(e.ID())
	if !ok || !bytes.Equal(got.Encode(), e.Encode()) {
		t.Fatal("genuine entry not stored")
	}
}

// TestPullsBoundedUnderStampFlood: a byzantine member announces stamps of
// versions that do not exist, as fast as it likes, and never answers. At
// every step the pulls outstanding stay within MaxPulls and those to it
// within MaxPullsPerPeer; the ids it is asked for are bounded by what the
// timeouts free; and an honest announcer's version is still pulled during
// the flood. Random flood sizes and timings, seed printed.
func TestPullsBoundedUnderStampFlood(t *testing.T) {
	seed := testutil.Seed(t)
	r := rand.New(rand.NewPCG(seed, 12))
	const maxPulls, perPeer = 64, 24
	tr := &recorder{}
	g, s := newEngine(t, tr, peers{"byz", "honest"}, func(c *protocol.Config) {
		c.MaxPulls, c.MaxPullsPerPeer = maxPulls, perPeer
	})
	h := testHolder(t, 2)
	now := t0
	var asked, honestPulled int
	for step := range 400 {
		now = now.Add(time.Duration(r.IntN(100)) * time.Millisecond)
		m := &protocol.Message{Kind: protocol.KindHave, Hops: uint8(1 + r.IntN(5))}
		for range 1 + r.IntN(1000) {
			var st locator.Stamp
			for i := range st.ID {
				st.ID[i] = byte(r.Uint32())
			}
			st.Version = 1 + r.Uint64N(10)
			m.Stamps = append(m.Stamps, st)
		}
		if err := g.HandleMessage(now, "byz", m.Encode()); err != nil {
			t.Fatal(err)
		}
		if step%40 == 0 { // an honest version among the flood
			e := publish(t, h, step, 1)
			_ = g.HandleMessage(now, "honest", have(2, e))
			for _, w := range sentTo(t, tr, "honest", protocol.KindWant) {
				for _, id := range w.IDs {
					if id == e.ID() {
						_ = g.HandleMessage(now, "honest", entriesMsg(2, e.Encode()))
						honestPulled++
					}
				}
			}
			if _, ok, _ := s.Get(e.ID()); !ok {
				t.Fatalf("seed %d step %d: honest version not pulled during the flood", seed, step)
			}
		}
		g.Tick(now)
		asked += len(wantedIDs(sentTo(t, tr, "byz", protocol.KindWant)))
		n, most := g.Outstanding()
		if n > maxPulls || most > perPeer {
			t.Fatalf("seed %d step %d: %d pulls outstanding, %d to one peer (bounds %d, %d)", seed, step, n, most, maxPulls, perPeer)
		}
	}
	// A pull holds its slot from its first request until it is given
	// up, and waits at least PullTimeout, doubling, between requests: no
	// slot asks more than twice per PullTimeout.
	elapsed := now.Sub(t0)
	limit := 2 * perPeer * (int(elapsed/protocol.DefaultConfig().PullTimeout) + 1)
	if st := g.Stats(); asked > limit || st.PullsRefused == 0 || st.PullsAbandoned == 0 {
		t.Fatalf("seed %d: asked the flooder for %d ids in %v (limit %d); stats %+v", seed, asked, elapsed, limit, st)
	}
	if honestPulled != 10 {
		t.Fatalf("honest versions pulled: %d", honestPulled)
	}
}

// TestRingCoversWhatRandomRelayMisses: with a relay fan-out of 1 random
// relaying alone leaves most nodes out; the ring successor announcement
// brings every version to every node by push, with anti-entropy off.
func TestRingCoversWhatRandomRelayMisses(t *testing.T) {
	cfg := protocol.DefaultConfig()
	cfg.Fanout, cfg.RelayFanout = 1, 1
	cfg.AntiEntropyInterval = 24 * time.Hour
	net := newNet(t, 7, 40, locator.Policy{DigestDepth: 2}, cfg)
	h := testHolder(t, 1)
	net.RunFor(time.Second)
	for i := range 5 {
		if _, err := net.Nodes()[i*7].Engine.Publish(net.Now, publish(t, h, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if !net.RunUntil(time.Minute, func() bool {
		for _, n := range net.Nodes() {
			if n.Store.Len() != 5 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every node got every version by push")
	}
	var sessions uint64
	for _, n := range net.Nodes() {
		sessions += n.Engine.Stats().SessionsStarted
	}
	if sessions != 0 {
		t.Fatalf("%d anti-entropy sessions ran", sessions)
	}
}

// TestPeerAliveReannouncesAndReconciles: versions created while a peer was
// unreachable are announced to it when it comes back, after a jitter of at
// most RejoinDelay, and an exchange is started with it; a burst of peers
// coming back starts at most RejoinExchanges exchanges.
func TestPeerAliveReannouncesAndReconciles(t *testing.T) {
	tr := &recorder{}
	many := peers{"back"}
	for i := range 99 {
		many = append(many, protocol.PeerID(fmt.Sprintf("peer-%02d", i)))
	}
	// No periodic exchange gets in the way of what is checked.
	const aeEvery = time.Hour
	g, _ := newEngine(t, tr, many, func(c *protocol.Config) { c.AntiEntropyInterval = aeEvery })
	h := testHolder(t, 1)
	g.Tick(t0)
	before := publish(t, h, 1, 1)
	_, _ = g.Publish(t0, before)
	downAt := t0.Add(time.Minute)
	during := []*locator.Entry{publish(t, h, 2, 1), publish(t, h, 3, 1)}
	for i, e := range during {
		_, _ = g.Publish(downAt.Add(time.Duration(i+1)*time.Second), e)
	}
	g.Tick(downAt.Add(5 * time.Second))
	tr.sent, tr.to = nil, nil
	now := downAt.Add(30 * time.Second)
	g.PeerAlive(now, "back", downAt)
	for _, p := range many[1:] {
		g.PeerAlive(now, p, time.Time{}) // new peers: nothing to re-announce
	}
	wake := g.NextWake()
	if wake.Before(now) || wake.After(now.Add(protocol.DefaultConfig().RejoinDelay)) {
		t.Fatalf("reaction at %v, want within RejoinDelay of %v", wake, now)
	}
	g.Tick(now.Add(protocol.DefaultConfig().RejoinDelay))
	var stamps []locator.ID
	for _, m := range sentTo(t, tr, "back", protocol.KindHave) {
		if m.Hops != 1 {
			t.Fatalf("re-announced with hops %d", m.Hops)
		}
		for _, s := range m.Stamps {
			stamps = append(stamps, s.ID)
		}
	}
	if len(stamps) != 2 || stamps[0] != during[0].ID() || stamps[1] != during[1].ID() {
		t.Fatalf("re-announced %v, want the 2 versions created while it was away", stamps)
	}
	st := g.Stats()
	if st.Reannounced != 2 || st.Rejoins != 100 || st.RejoinExchanges < 1 || st.RejoinExchanges > uint64(protocol.DefaultConfig().RejoinExchanges) {
		t.Fatalf("stats %+v", st)
	}
	// Another burst at once is held back to 2×RejoinDelay after the first.
	later := now.Add(protocol.DefaultConfig().RejoinDelay)
	for _, p := range many {
		g.PeerAlive(later, p, time.Time{})
	}
	g.Tick(later.Add(protocol.DefaultConfig().RejoinDelay / 2))
	if got := g.Stats().RejoinExchanges; got != st.RejoinExchanges {
		t.Fatalf("second burst started exchanges at once (%d, was %d)", got, st.RejoinExchanges)
	}
	g.Tick(later.Add(3 * protocol.DefaultConfig().RejoinDelay))
	if got := g.Stats().RejoinExchanges; got == st.RejoinExchanges {
		t.Fatal("second burst never reacted to")
	}
}

// TestHealConvergesWithoutPeriodicAntiEntropy: two sides publish while cut
// off from each other; at the heal each node is told the far side is
// alive again. With periodic anti-entropy off, the reaction alone brings
// every replica to the same set within seconds.
func TestHealConvergesWithoutPeriodicAntiEntropy(t *testing.T) {
	seed := testutil.Seed(t)
	cfg := protocol.DefaultConfig()
	cfg.AntiEntropyInterval = 24 * time.Hour
	net := newNet(t, seed, 30, locator.Policy{DigestDepth: 2}, cfg)
	net.Loss = 0.05
	side := func(id protocol.PeerID) bool { return id < "p10" }
	net.Cut = func(from, to protocol.PeerID) bool { return side(from) != side(to) }
	net.RunFor(time.Second)
	cutAt := net.Now
	h := testHolder(t, 1)
	for i := range 20 {
		n := net.Nodes()[(i*7)%30]
		if _, err := n.Engine.Publish(net.Now, publish(t, h, i, 1)); err != nil {
			t.Fatal(err)
		}
		net.RunFor(300 * time.Millisecond)
	}
	net.RunFor(5 * time.Second)
	net.Cut = nil
	for _, a := range net.Nodes() {
		for _, b := range net.Nodes() {
			if side(a.ID) != side(b.ID) {
				a.Engine.PeerAlive(net.Now, b.ID, cutAt)
			}
		}
	}
	healed := net.Now
	if !net.RunUntil(time.Minute, converged(net)) {
		t.Fatalf("seed %d: no convergence a minute after the heal", seed)
	}
	if d := net.Now.Sub(healed); d > 10*time.Second {
		t.Fatalf("seed %d: converged %v after the heal", seed, d)
	}
	if n := net.Nodes()[0].Store.Len(); n != 20 {
		t.Fatalf("seed %d: %d entries, want 20", seed, n)
	}
	t.Logf("converged %v after the heal", net.Now.Sub(healed))
}

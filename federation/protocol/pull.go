package protocol

import (
	"time"

	"github.com/signpost-federation/signpost/locator"
)

// maxAnnouncers bounds the other announcers a pull remembers to ask after
// the first: the few that announce a version first are enough, and the
// bound keeps a pull's state constant whatever the number of announcers.
const maxAnnouncers = 4

// pull is one version asked for because a peer announced it (KindHave).
type pull struct {
	stamp    locator.Stamp // the newest announced
	hops     uint8         // the announcement's, carried by the Want
	asked    PeerID        // the announcer asked now
	hedge    PeerID        // a second announcer asked, if the first was slow
	askedAt  time.Time
	others   []PeerID // announcers not asked yet, in the order heard
	timeouts int      // answers that did not come in time
	deadline time.Time
	done     bool
}

// pullTable holds the outstanding pulls. Retries walk order, the order the
// pulls began, so that a run is deterministic (map order is not).
type pullTable struct {
	byID    map[locator.ID]*pull
	order   []*pull
	perPeer map[PeerID]int
	next    time.Time // no deadline is before it; zero when there is none
}

func (t *pullTable) init() {
	t.byID = make(map[locator.ID]*pull)
	t.perPeer = make(map[PeerID]int)
}

func (t *pullTable) nextDeadline() time.Time { return t.next }

func (t *pullTable) setDeadline(p *pull, d time.Time) {
	p.deadline = d
	if t.next.IsZero() || d.Before(t.next) {
		t.next = d
	}
}

func (t *pullTable) ask(p *pull, peer PeerID, now time.Time) {
	p.asked, p.askedAt = peer, now
	t.perPeer[peer]++
}

func (t *pullTable) release(p *pull) {
	for _, q := range []PeerID{p.asked, p.hedge} {
		if q == "" {
			continue
		}
		if t.perPeer[q]--; t.perPeer[q] <= 0 {
			delete(t.perPeer, q)
		}
	}
	p.asked, p.hedge = "", ""
}

func (t *pullTable) remove(id locator.ID, p *pull) {
	t.release(p)
	p.done = true
	delete(t.byID, id)
}

// tidy drops finished pulls from order when none is outstanding, or when
// most are finished, so that order stays in proportion to the pulls
// outstanding (retryPulls compacts it too, but a loss-free run never gets
// there). Not while order is being walked.
func (t *pullTable) tidy() {
	switch {
	case len(t.byID) == 0:
		t.next = time.Time{} // nothing to wake for
		clear(t.order)
		t.order = t.order[:0]
	case len(t.order) > 2*len(t.byID)+64:
		live := t.order[:0]
		for _, q := range t.order {
			if !q.done {
				live = append(live, q)
			}
		}
		clear(t.order[len(live):])
		t.order = live
	}
}

// Outstanding returns the number of pulls outstanding, and the most
// outstanding to any one peer: they never exceed MaxPulls and
// MaxPullsPerPeer.
func (g *Engine) Outstanding() (pulls, maxPerPeer int) {
	for _, n := range g.pulls.perPeer {
		maxPerPeer = max(maxPerPeer, n)
	}
	return len(g.pulls.byID), maxPerPeer
}

// maxPullTimeouts is how many answers a pull waits for in vain before
// the version is left to anti-entropy.
const maxPullTimeouts = 4

// pullWait is PullTimeout doubled for each answer that did not come
// (a loaded peer or network is slow, not gone), jittered to 1–1.5×.
func (g *Engine) pullWait(timeouts int) time.Duration {
	t := g.cfg.PullTimeout << min(timeouts, maxPullTimeouts)
	return t + time.Duration(g.cfg.Rand.Int64N(int64(t/2)+1))
}

// onHave pulls the announced versions we lack or hold older: at once from
// this announcer, unless a pull of the version is already outstanding (the
// announcer is then remembered as the next to ask), or a bound is reached.
// No eager copy is on its way (relays announce, they do not push), so there
// is nothing to gain by waiting before the first request; the timeout
// applies to the answer. An announcer heard when the first request has
// gone unanswered for a quarter of PullTimeout is asked too (once per
// pull, a hedge): on a slow or lossy link the second answer often comes
// first, and the duplicate is one entry.
func (g *Engine) onHave(now time.Time, from PeerID, m *Message) error {
	want := &Message{Kind: KindWant, Hops: m.Hops}
	for _, s := range m.Stamps {
		if !g.lacks(s) {
			continue
		}
		if p := g.pulls.byID[s.ID]; p != nil {
			if s.Newer(p.stamp) && g.pulls.perPeer[from] < g.cfg.MaxPullsPerPeer {
				// A newer version than the one asked for: ask its
				// announcer now.
				g.pulls.release(p)
				p.stamp, p.hops = s, m.Hops
				g.pulls.ask(p, from, now)
				g.pulls.setDeadline(p, now.Add(g.pullWait(p.timeouts)))
				want.IDs = append(want.IDs, s.ID)
				g.stats.Pulls++
			} else if p.hedge == "" && p.asked != "" && from != p.asked && now.Sub(p.askedAt) >= g.cfg.PullTimeout/4 &&
				g.pulls.perPeer[from] < g.cfg.MaxPullsPerPeer {
				p.hedge = from
				g.pulls.perPeer[from]++
				want.Hops = max(want.Hops, p.hops)
				want.IDs = append(want.IDs, s.ID)
				g.stats.PullRetries++
			} else if from != p.asked && from != p.hedge && len(p.others) < maxAnnouncers && !containsPeer(p.others, from) {
				p.others = append(p.others, from)
			}
			continue
		}
		if len(g.pulls.byID) >= g.cfg.MaxPulls || g.pulls.perPeer[from] >= g.cfg.MaxPullsPerPeer {
			g.stats.PullsRefused++
			continue
		}
		p := &pull{stamp: s, hops: m.Hops}
		g.pulls.byID[s.ID] = p
		g.pulls.order = append(g.pulls.order, p)
		g.pulls.ask(p, from, now)
		g.pulls.setDeadline(p, now.Add(g.pullWait(0)))
		want.IDs = append(want.IDs, s.ID)
		g.stats.Pulls++
	}
	r := &replier{g: g, to: from, budget: g.cfg.MaxReplyBytes, now: now}
	r.sendIDs(want)
	return nil
}

func containsPeer(ps []PeerID, p PeerID) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// pullArrived ends the pull of e's id once the store holds the announced
// version or a newer one. An entry the store refused (a forged signature,
// say) ends nothing: the pull goes on to the next announcer.
func (g *Engine) pullArrived(e *locator.Entry) {
	id := e.ID()
	p := g.pulls.byID[id]
	if p == nil || g.lacks(p.stamp) {
		return
	}
	g.pulls.remove(id, p)
	g.pulls.tidy()
}

// retryPulls asks the next announcer of every pull whose answer is overdue:
// one not asked yet, or else the last one again (the Want or the answer may
// have been lost, or the peer is slow), waiting twice as long each time;
// after maxPullTimeouts it gives the version up to anti-entropy. Backing
// off matters on a loaded machine: with a fixed timeout, answers slower
// than it were asked for again and again and then abandoned, and a
// loaded federation of real agents left most versions to anti-entropy.
func (g *Engine) retryPulls(now time.Time) {
	t := &g.pulls
	if t.next.IsZero() || now.Before(t.next) {
		return
	}
	t.next = time.Time{}
	var (
		wants = map[PeerID]*Message{}
		to    []PeerID // the peers of wants, in a deterministic order
	)
	live := t.order[:0]
	for _, p := range t.order {
		if p.done {
			continue
		}
		if now.Before(p.deadline) {
			live = append(live, p)
			t.setDeadline(p, p.deadline)
			continue
		}
		if !g.lacks(p.stamp) { // arrived by anti-entropy
			t.remove(p.stamp.ID, p)
			continue
		}
		last := p.asked
		t.release(p)
		next := PeerID("")
		for len(p.others) > 0 && next == "" {
			if c := p.others[0]; t.perPeer[c] < g.cfg.MaxPullsPerPeer {
				next = c
			}
			p.others = p.others[1:]
		}
		p.timeouts++
		if next == "" && last != "" && t.perPeer[last] < g.cfg.MaxPullsPerPeer {
			next = last
		}
		if next == "" || p.timeouts > maxPullTimeouts {
			g.stats.PullsAbandoned++
			t.remove(p.stamp.ID, p)
			continue
		}
		t.ask(p, next, now)
		t.setDeadline(p, now.Add(g.pullWait(p.timeouts)))
		g.stats.PullRetries++
		w := wants[next]
		if w == nil {
			w = &Message{Kind: KindWant, Hops: p.hops}
			wants[next] = w
			to = append(to, next)
		}
		// One Want carries one hop count: the largest, so that no
		// version is relayed beyond MaxHops.
		w.Hops = max(w.Hops, p.hops)
		w.IDs = append(w.IDs, p.stamp.ID)
		live = append(live, p)
	}
	clear(t.order[len(live):])
	t.order = live
	for _, peer := range to {
		r := &replier{g: g, to: peer, budget: g.cfg.MaxReplyBytes, now: now}
		r.sendIDs(wants[peer])
	}
}

// maxPublishedLog bounds Engine.published; beyond it the oldest half is
// forgotten (a peer away that long is repaired by anti-entropy).
const maxPublishedLog = 4096

type publishedRec struct {
	at time.Time
	id locator.ID
}

func (g *Engine) logPublished(now time.Time, id locator.ID) {
	if len(g.published) >= maxPublishedLog {
		n := copy(g.published, g.published[maxPublishedLog/2:])
		clear(g.published[n:])
		g.published = g.published[:n]
	}
	g.published = append(g.published, publishedRec{now, id})
}

// maxRejoinAnnounce bounds the peers waiting for a re-announcement.
const maxRejoinAnnounce = 4096

// rejoinSpread is the number of nodes that, between them, start an
// exchange with a lone peer coming back: each node does with probability
// about rejoinSpread/N, so a returning node is reconciled by a few nodes
// at once, not by all of them.
const rejoinSpread = 3

type reannounce struct {
	peer      PeerID
	since, at time.Time
}

// rejoinState is the engine's reaction to membership (PeerAlive).
type rejoinState struct {
	seen     int       // peers reported since the last reaction
	cands    []PeerID  // a uniform sample of them (reservoir)
	fireAt   time.Time // when the next reaction starts its exchanges; zero: none pending
	lastFire time.Time
	announce []reannounce
	annNext  time.Time // earliest announce[].at; zero when none
}

func (r *rejoinState) nextWake() time.Time {
	t := r.fireAt
	if !r.annNext.IsZero() && (t.IsZero() || r.annNext.Before(t)) {
		t = r.annNext
	}
	return t
}

// PeerAlive tells the engine that membership reports peer as joined, or
// back after being suspected, declared dead or cut off; since is when it
// became unreachable (zero if it is new, or unknown). After a random delay
// of up to RejoinDelay the engine
//   - starts anti-entropy exchanges with a sample of the peers reported
//     since its last reaction: at most RejoinExchanges, and about
//     rejoinSpread/N per reported peer, so that a lone returning node is
//     reconciled by a few nodes at once and a healed partition by every
//     node once, not in a storm; reactions start at most one every
//     2×RejoinDelay, so a flapping member cannot keep the node busy;
//   - announces to peer, as if new (stamps, hops 1, so that what peer
//     pulls it relays on), the versions created here since since: they
//     were pushed while peer could not hear them, and are otherwise old
//     news that only anti-entropy would bring.
//
// Membership is only ever a source of peers: nothing here, nor a peer
// leaving, withdraws or hides an entry.
func (g *Engine) PeerAlive(now time.Time, peer PeerID, since time.Time) {
	if peer == g.cfg.Self {
		return
	}
	g.stats.Rejoins++
	r := &g.rejoin
	r.seen++
	if len(r.cands) < g.cfg.RejoinExchanges {
		r.cands = append(r.cands, peer)
	} else if j := g.cfg.Rand.IntN(r.seen); j < len(r.cands) {
		r.cands[j] = peer
	}
	if r.fireAt.IsZero() {
		r.fireAt = now.Add(g.rejoinWait())
		if gap := r.lastFire.Add(2 * g.cfg.RejoinDelay); !r.lastFire.IsZero() && r.fireAt.Before(gap) {
			r.fireAt = gap
		}
	}
	n := len(g.published)
	if since.IsZero() || n == 0 || g.published[n-1].at.Before(since) || len(r.announce) >= maxRejoinAnnounce {
		return
	}
	at := now.Add(g.rejoinWait())
	r.announce = append(r.announce, reannounce{peer: peer, since: since, at: at})
	if r.annNext.IsZero() || at.Before(r.annNext) {
		r.annNext = at
	}
}

func (g *Engine) rejoinWait() time.Duration {
	return time.Duration(g.cfg.Rand.Int64N(int64(g.cfg.RejoinDelay) + 1))
}

// react runs the reactions to PeerAlive that are due.
func (g *Engine) react(now time.Time) {
	r := &g.rejoin
	if !r.annNext.IsZero() && !now.Before(r.annNext) {
		r.annNext = time.Time{}
		keep := r.announce[:0]
		for _, a := range r.announce {
			if now.Before(a.at) {
				keep = append(keep, a)
				if r.annNext.IsZero() || a.at.Before(r.annNext) {
					r.annNext = a.at
				}
				continue
			}
			g.reannounce(a)
		}
		clear(r.announce[len(keep):])
		r.announce = keep
	}
	if r.fireAt.IsZero() || now.Before(r.fireAt) {
		return
	}
	if n := len(g.mem.Peers()); n > 0 {
		x := float64(rejoinSpread*r.seen) / float64(n)
		k := int(x)
		if g.cfg.Rand.Float64() < x-float64(k) {
			k++
		}
		for _, p := range r.cands[:min(k, len(r.cands))] {
			g.stats.RejoinExchanges++
			g.startAntiEntropyWith(p)
		}
	}
	r.seen, r.cands, r.fireAt, r.lastFire = 0, r.cands[:0], time.Time{}, now
}

// reannounce sends a.peer the stamps of the versions created here since
// a.since that the store still holds (their current version).
func (g *Engine) reannounce(a reannounce) {
	i := len(g.published)
	for i > 0 && !g.published[i-1].at.Before(a.since) {
		i--
	}
	have := &Message{Kind: KindHave, Hops: 1}
	flush := func() {
		if len(have.Stamps) > 0 {
			g.stats.Reannounced += uint64(len(have.Stamps))
			g.send(a.peer, KindHave, 0, have.Encode())
			have.Stamps = have.Stamps[:0]
		}
	}
	for _, rec := range g.published[i:] {
		e, ok, err := g.store.Get(rec.id)
		if err != nil || !ok {
			continue
		}
		have.Stamps = append(have.Stamps, locator.StampOf(e))
		if (len(have.Stamps)+1)*stampLen > g.entryMax || len(have.Stamps) == maxListItems {
			flush()
		}
	}
	flush()
}

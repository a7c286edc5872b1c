package node

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signpost-federation/signpost/node/internal/records"
)

// Publication: the durable outbox.
//
// A record write (create, delete, objection, the retention sweep) commits
// the record change and an outbox item in one transaction of the records
// store (records/outbox.go). Items leave the outbox only through
// [Node.processItems], which tokenises what it needs with one n.tok.Keys
// call per purpose, publishes or withdraws, and then, in one more
// transaction, removes the items done and records what was published (the
// epoch, the version, the entries' expiry and keys). So nothing
// acknowledged is lost across a restart or a kill -9, and an entry is
// published at least once (the federation's entries are idempotent by
// version).
//
// Two callers drain it, one path:
//   - a write request publishes its own items before it answers (so a
//     write made while the issuer answers is published when acknowledged,
//     as before); when the issuer cannot be reached its items stay and it
//     answers 202 with "published": false;
//   - the background publisher (started by [Node.Start], stopped by
//     Shutdown) drains whatever is left, in batches of Config.MaxBatch,
//     retrying with capped exponential back-off on the node's clock
//     (Options.Now) while the issuer cannot be reached.
//
// A local id is claimed while one of them handles it, so the two never
// publish the same record at once (a write waits for a batch that holds its
// local id; the publisher skips the items a write holds).
//
// At start the node publishes only what is missing, changed or due: the
// outbox holds what is missing or changed; entries due for a refresh
// (Config.EntryLifetime) are found in a due index keyed by time; a new
// epoch enqueues, in the background, every record not published under it.
// Start tokenises nothing and is ready at once.
const (
	publishRetryMin = 500 * time.Millisecond
	publishRetryMax = time.Minute
	// publishIdle bounds the publisher's sleep when nothing is pending (it
	// is woken by writes and checks the due index on waking).
	publishIdle = 10 * time.Minute
	// epochStep bounds the records one step of an epoch backfill enqueues.
	epochStep = 1000
	// rotationPace is the least time between two steps of an epoch
	// backfill: with epochStep, a node passes over at most 100 records a
	// second after a rotation or a retirement (each costing one token per
	// purpose from the issuers, which rate-limit it too), so that a
	// federation's nodes rotating together do not flood the issuers.
	rotationPace = 10 * time.Second
	// keyCheckInterval is how often an idle publisher looks for new token
	// keys.
	keyCheckInterval = 30 * time.Second
)

// keyGeneration names the token keys in force for this node's purposes:
// a hash of (purpose, current epoch, older epochs in force) over its
// purposes, or 0 if it has none. It changes whenever one of its purposes
// moves to a new key (a rotation, or the first key of a new federation) or
// an old key is retired, and the outbox then passes over every record
// (records.Store.EnsureEpoch): publishing it under the new key, or
// withdrawing its entries under the retired one. With one key in force per
// purpose it is the hash of (purpose, epoch) it always was, so a store
// written before rotations were tracked is not passed over again.
func (n *Node) keyGeneration() uint32 {
	if n.opt.Keyring == nil {
		return 0
	}
	h := fnv.New32a()
	any := false
	for _, p := range n.cfg.Purposes {
		ks, err := n.opt.Keyring.KeySet(p, 0)
		if err != nil {
			continue
		}
		any = true
		fmt.Fprintf(h, "%s\x00%d\x00", p, ks.Epoch)
		for _, e := range n.epochsInForce(p) {
			if e != ks.Epoch {
				fmt.Fprintf(h, "+%d\x00", e)
			}
		}
	}
	if !any {
		return 0
	}
	return max(h.Sum32(), 1)
}

// keyNames lists the purposes' current keys, for the log ("safeguarding@1").
func (n *Node) keyNames() string {
	var out []string
	for _, p := range n.cfg.Purposes {
		if n.opt.Keyring == nil {
			break
		}
		if ks, err := n.opt.Keyring.KeySet(p, 0); err == nil {
			out = append(out, fmt.Sprintf("%s@%d", p, ks.Epoch))
		}
	}
	return strings.Join(out, ",")
}

// publisher is the background half of the outbox and the claims both
// halves share.
type publisher struct {
	n *Node

	mu      sync.Mutex
	claimed map[string]chan struct{} // local id -> closed on release
	delay   time.Duration            // current back-off, 0 after a success
	retryAt time.Time                // no attempt before (node clock)

	// backfill: the epoch pass is still to run (from backfillAfter), for
	// the token keys gen names (see keyGeneration).
	backfill      bool
	backfillAfter string
	gen           uint32
	// pace is the least time between two steps of the backfill (each
	// enqueues at most epochStep records): the rotation's rate bound.
	// nextBackfill is when the next step may run (node clock).
	pace         time.Duration
	nextBackfill time.Time

	wake chan struct{}
	// passing and genSeen mirror backfill and gen for the metrics (read
	// at scrape time).
	passing atomic.Bool
	genSeen atomic.Uint32
}

func (p *publisher) setBackfill(b bool) {
	p.backfill = b
	p.passing.Store(b)
}

func newPublisher(n *Node) *publisher {
	return &publisher{n: n, claimed: make(map[string]chan struct{}), wake: make(chan struct{}, 1), pace: rotationPace}
}

// kick wakes the background publisher (it still honours its back-off).
func (p *publisher) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// claim waits until none of ids is claimed, then claims them all; release
// gives them back.
func (p *publisher) claim(ctx context.Context, ids []string) (release func(), err error) {
	for {
		p.mu.Lock()
		var busy chan struct{}
		for _, id := range ids {
			if c, ok := p.claimed[id]; ok {
				busy = c
				break
			}
		}
		if busy == nil {
			mine := make(chan struct{})
			for _, id := range ids {
				p.claimed[id] = mine
			}
			p.mu.Unlock()
			return func() {
				p.mu.Lock()
				for _, id := range ids {
					if p.claimed[id] == mine {
						delete(p.claimed, id)
					}
				}
				p.mu.Unlock()
				close(mine)
			}, nil
		}
		p.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// tryClaim claims the items' local ids that nobody holds and returns the
// items it may handle.
func (p *publisher) tryClaim(items []records.Item) (mine []records.Item, release func()) {
	ch := make(chan struct{})
	var ids []string
	p.mu.Lock()
	for _, it := range items {
		c, ok := p.claimed[it.LocalID]
		if ok && c != ch {
			continue
		}
		if !ok {
			p.claimed[it.LocalID] = ch
			ids = append(ids, it.LocalID)
		}
		mine = append(mine, it)
	}
	p.mu.Unlock()
	return mine, func() {
		p.mu.Lock()
		for _, id := range ids {
			delete(p.claimed, id)
		}
		p.mu.Unlock()
		close(ch)
	}
}

// run is the background publisher: it drains the outbox, waits, and
// drains again until ctx ends.
func (p *publisher) run(ctx context.Context) {
	for {
		wait := p.step(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// step does what is due now — the epoch backfill's next step, the entries
// due for a refresh, every pending item it can — and returns how long to
// wait before the next step.
func (p *publisher) step(ctx context.Context) time.Duration {
	n := p.n
	now := n.opt.Now()
	p.mu.Lock()
	retryAt := p.retryAt
	p.mu.Unlock()
	if now.Before(retryAt) {
		return retryAt.Sub(now)
	}
	wait := publishIdle
	if n.opt.Keyring != nil {
		// New token keys (a rotation, or the first keys of a federation
		// that had none) are noticed here.
		wait = keyCheckInterval
	}
	if gen := n.keyGeneration(); gen != p.gen {
		backfill, err := n.records.EnsureEpoch(gen)
		if err != nil {
			n.log.Error("outbox: recording the new token keys failed", "err", err)
			return p.failed(err)
		}
		if backfill {
			p.setBackfill(true)
			p.backfillAfter, p.nextBackfill = "", time.Time{}
			n.log.Info("outbox: new token keys; every record will be published under them", "keys", n.keyNames())
		}
		p.gen = gen
		p.genSeen.Store(gen)
	}
	if err := p.enqueueDue(now, &wait); err != nil {
		n.log.Error("outbox: refresh scan failed", "err", err)
		return p.failed(err)
	}
	var after uint64
	var itemErr error
	blocked := map[string]bool{}
	for ctx.Err() == nil {
		items, err := n.records.Pending(after, n.cfg.MaxBatch)
		if err != nil {
			n.log.Error("outbox: read failed", "err", err)
			return p.failed(err)
		}
		if len(items) == 0 {
			break
		}
		after = items[len(items)-1].Seq
		mine, release := p.tryClaim(items)
		_, err = n.processItems(ctx, mine, true, blocked)
		release()
		if errors.Is(err, errSomeItems) {
			itemErr = err
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("outbox: publication failed; will retry", "pending", n.records.OutboxLen(), "err", err)
			}
			return p.failed(err)
		}
		p.succeeded()
	}
	if itemErr != nil {
		n.log.Warn("outbox: some items failed to publish; will retry", "pending", n.records.OutboxLen(), "err", itemErr)
		return p.failed(itemErr)
	}
	return wait
}

// enqueueDue runs the epoch backfill's next step and moves the refreshes
// due now into the outbox; wait is shortened to the next refresh.
func (p *publisher) enqueueDue(now time.Time, wait *time.Duration) error {
	n := p.n
	note := records.Note{At: now}
	if p.backfill && now.Before(p.nextBackfill) {
		*wait = min(*wait, p.nextBackfill.Sub(now))
	} else if p.backfill {
		last, _, err := n.records.EnqueueEpoch(p.gen, p.backfillAfter, epochStep, note)
		if err != nil {
			return err
		}
		p.backfillAfter = last
		if last == "" {
			p.setBackfill(false)
			n.metrics.republish.WithLabelValues("ok").Inc()
			n.log.Info("outbox: every record is queued for the current token keys", "keys", n.keyNames())
		} else {
			p.nextBackfill = now.Add(p.pace)
			*wait = min(*wait, p.pace)
		}
	}
	_, next, err := n.records.EnqueueDue(now, note)
	if err != nil {
		return err
	}
	if !next.IsZero() {
		*wait = min(*wait, max(next.Sub(now), time.Second))
	}
	return nil
}

// failed notes a failed attempt and returns the back-off to wait.
func (p *publisher) failed(error) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = min(max(p.delay*2, publishRetryMin), publishRetryMax)
	p.retryAt = p.n.opt.Now().Add(p.delay)
	return p.delay
}

func (p *publisher) succeeded() {
	p.mu.Lock()
	p.delay, p.retryAt = 0, time.Time{}
	p.mu.Unlock()
}

// pubAction is what processItems does for one item.
type pubAction int

const (
	actNone pubAction = iota
	actPublish
	actWithdraw
)

// processItems publishes or withdraws what the items say, given the
// records' state now, and completes the items it handled. It returns, per
// item handled, the lookup keys it published or withdrew (for the audit).
// background: audit the items that carry an audit action (their writer
// could not). Items whose record changed since are completed without
// action (a later item carries the change). When tokens cannot be made no
// item is handled; an item the index fails stays, with the later items of
// its record, and the others are completed (errSomeItems): one item the
// federation refuses never holds up the rest. blocked (nil: none) holds the
// local ids with an item that failed, whose later items wait too (a
// record's changes apply in order); processItems adds to it.
func (n *Node) processItems(ctx context.Context, items []records.Item, background bool, blocked map[string]bool) (map[uint64][][16]byte, error) {
	if blocked == nil {
		blocked = map[string]bool{}
	}
	if len(items) == 0 {
		return nil, nil
	}
	n.metrics.publishAttempts.Inc()
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.LocalID)
	}
	states, err := n.records.States(ids)
	if err != nil {
		return nil, err
	}
	now := n.opt.Now()
	epoch := n.keyGeneration()
	keys := n.keysNow()

	// Pass 1: the numbers to tokenise, judged on the stored state (a
	// superset of what pass 2 needs).
	var nums []string
	seen := map[string]bool{}
	need := func(nhs string) {
		if nhs != "" && !seen[nhs] {
			seen[nhs] = true
			nums = append(nums, nhs)
		}
	}
	for _, it := range items {
		st := states[it.LocalID]
		switch it.Op {
		case records.OpPublish:
			if publishDue(it, st, now, epoch) && keys.stored(st) == nil {
				need(st.Record.NHSNumber)
			}
		case records.OpWithdraw:
			if !st.HasPublished {
				need(withdrawNumber(it, st))
			}
		}
	}
	tokens := map[string]map[string]Keys{}
	if len(nums) > 0 {
		byPurpose, err := n.tokeniseAt(ctx, keys, nums)
		if err != nil {
			n.metrics.publishFailures.Inc()
			return nil, fmt.Errorf("outbox: %w", err)
		}
		for i, nhs := range nums {
			m := make(map[string]Keys, len(byPurpose))
			for p, ks := range byPurpose {
				m[p] = ks[i]
			}
			tokens[nhs] = m
		}
	}

	// Pass 2: in order, on the state as the earlier items left it.
	var (
		done     []uint64
		set      = map[string]records.Published{}
		unset    []string
		subjects = map[uint64][][16]byte{}
		watch    [][16]byte
		audits   []AuditEvent
		errs     []error
	)
	defer func() { n.watchMine(watch) }()
	// finish records an item's outcome: done, or failed (its record's
	// later items wait).
	finish := func(it records.Item, st records.State, subject [][16]byte, perr error) {
		if perr != nil {
			blocked[it.LocalID] = true
			errs = append(errs, perr)
			return
		}
		states[it.LocalID] = st
		done = append(done, it.Seq)
		subjects[it.Seq] = subject
		if background && it.Audit != "" {
			audits = append(audits, AuditEvent{Action: it.Audit, Actor: it.Actor, LocalID: it.LocalID, Count: 1, Outcome: "ok", Subject: subject})
		}
	}
	// With a BatchIndex, the first publication of a record (nothing
	// published before, so nothing to settle: an import's rows, new
	// records) waits in pending and goes out with the others: entries
	// signed on every core, one replica transaction. pending is flushed
	// before any other index operation and before another item of a
	// pending record, so that the index sees the operations in the items'
	// order. What publishUnder does for such a record is only this.
	bi, batched := n.opt.Index.(BatchIndex)
	type pendingItem struct {
		it      records.Item
		st      records.State
		pub     records.Published
		subject [][16]byte
		from    int // its publications are pubs[from:from+len(subject)]
	}
	var (
		pending    []pendingItem
		pendingIDs = map[string]bool{}
		pubs       []Publication
	)
	flushPending := func() {
		if len(pending) == 0 {
			return
		}
		perrs := bi.PublishBatch(ctx, pubs)
		for _, p := range pending {
			var perr error
			for j := p.from; j < p.from+len(p.subject); j++ {
				if perrs[j] != nil {
					perr = fmt.Errorf("publish %q: %w", p.it.LocalID, perrs[j])
					break
				}
			}
			if perr == nil {
				n.metrics.published.Add(float64(len(p.subject)))
				set[p.it.LocalID] = p.pub
				unset = slices.DeleteFunc(unset, func(id string) bool { return id == p.it.LocalID })
				watch = append(watch, p.subject...)
				p.st.Published, p.st.HasPublished = p.pub, true
			}
			finish(p.it, p.st, p.subject, perr)
		}
		pending, pubs = pending[:0], pubs[:0]
		clear(pendingIDs)
	}
	// deferFirst queues a record's first publication in pending; false if
	// it must go through publishUnder (a purpose without a key).
	deferFirst := func(it records.Item, st records.State, ks map[string]Keys) bool {
		r := st.Record
		pub := records.Published{Epoch: epoch, Version: r.Version, Expires: n.entryExpiry(r, now)}
		if pub.Expires.Before(r.RetainUntil) {
			pub.RefreshAt = pub.Expires.Add(-n.cfg.EntryLifetime.D() / 4)
		}
		p := pendingItem{it: it, st: st, from: len(pubs)}
		var mine []Publication
		for _, purpose := range n.cfg.Purposes {
			k, ok := ks[purpose]
			if !ok {
				return false
			}
			mine = append(mine, Publication{Keys: k, Category: r.Category, Version: r.Version, Registered: r.Created, Expires: pub.Expires})
			pub.Keys = append(pub.Keys, records.PubKey{Purpose: purpose, Epoch: keys.cur[purpose], Lookup: k.Lookup, Seal: k.Seal})
			p.subject = append(p.subject, k.Lookup)
		}
		p.pub = pub
		pubs = append(pubs, mine...)
		pending = append(pending, p)
		pendingIDs[it.LocalID] = true
		return true
	}
	for _, it := range items {
		if pendingIDs[it.LocalID] {
			flushPending()
		}
		if blocked[it.LocalID] {
			continue
		}
		var perr error
		st := states[it.LocalID]
		act := actNone
		switch {
		case it.Op == records.OpPublish && publishDue(it, st, now, epoch):
			act = actPublish
		case it.Op == records.OpWithdraw && st.HasPublished && st.Published.Version < it.Version:
			act = actWithdraw
		case it.Op == records.OpWithdraw && !st.HasPublished && withdrawNumber(it, st) != "":
			act = actWithdraw
		}
		var subject [][16]byte
		switch act {
		case actPublish:
			r := st.Record
			ks, ok := tokens[r.NHSNumber]
			if !ok {
				ks, ok = keys.stored(st), keys.stored(st) != nil
			}
			if !ok {
				perr = fmt.Errorf("outbox: %s: no keys", it)
				break
			}
			if batched && !st.HasPublished && deferFirst(it, st, ks) {
				continue
			}
			flushPending()
			var pub records.Published
			pub, subject, perr = n.publishUnder(ctx, r, st, ks, keys, now, epoch)
			if perr != nil {
				break
			}
			for _, k := range pub.Keys {
				watch = append(watch, k.Lookup)
			}
			set[it.LocalID] = pub
			unset = slices.DeleteFunc(unset, func(id string) bool { return id == it.LocalID })
			st.Published, st.HasPublished = pub, true
		case actWithdraw:
			flushPending()
			var keys []Keys
			if st.HasPublished {
				for _, k := range st.Published.Keys {
					keys = append(keys, Keys{Lookup: k.Lookup, Seal: k.Seal})
				}
			} else if m, ok := tokens[withdrawNumber(it, st)]; ok {
				for _, p := range n.cfg.Purposes {
					keys = append(keys, m[p])
				}
			} else {
				perr = fmt.Errorf("outbox: %s: no keys", it)
				break
			}
			for _, k := range keys {
				if perr = n.opt.Index.Withdraw(ctx, k, it.Version, it.Expires); perr != nil {
					perr = fmt.Errorf("withdraw %q: %w", it.LocalID, perr)
					break
				}
				n.metrics.withdrawn.Inc()
				subject = append(subject, k.Lookup)
			}
			if perr != nil {
				break
			}
			delete(set, it.LocalID)
			unset = append(unset, it.LocalID)
			st.Published, st.HasPublished = records.Published{}, false
		}
		finish(it, st, subject, perr)
	}
	flushPending()
	if err := n.records.Complete(done, set, unset); err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	for _, e := range audits {
		n.audit(ctx, e)
	}
	if len(errs) > 0 {
		n.metrics.publishFailures.Inc()
		return subjects, fmt.Errorf("%w: %w", errSomeItems, errors.Join(errs...))
	}
	return subjects, nil
}

// errSomeItems: some items failed at the index (the rest are done); the
// publisher goes on with the next batch and backs off at the end.
var errSomeItems = errors.New("outbox: some items failed")

// publishDue reports whether a publish item has something to publish: its
// record is held at the item's version, not objected, not past its
// retention end (the sweep deletes it), and not already published so.
func publishDue(it records.Item, st records.State, now time.Time, epoch uint32) bool {
	r := st.Record
	if !st.Held || r.Objected || r.Version != it.Version || r.Expired(now) {
		return false
	}
	return !st.HasPublished || st.Published.Version != r.Version || st.Published.Epoch != epoch
}

// withdrawNumber is the number to tokenise for a withdrawal whose keys are
// not known: the item's (a deleted record) or the held record's (an
// objection).
func withdrawNumber(it records.Item, st records.State) string {
	if it.NHSNumber != "" {
		return it.NHSNumber
	}
	if st.Held {
		return st.Record.NHSNumber
	}
	return ""
}

// entryExpiry is when r's entries published at now expire: at its
// retention end, or sooner under Config.EntryLifetime (then refreshed).
func (n *Node) entryExpiry(r records.Record, now time.Time) time.Time {
	if l := n.cfg.EntryLifetime.D(); l > 0 {
		if e := now.Add(l).UTC().Truncate(time.Second); e.Before(r.RetainUntil) {
			return e
		}
	}
	return r.RetainUntil
}

// flush publishes a write's own items before the write answers; published
// is false when they stay queued (the issuer cannot be reached, or another
// failure, logged). The caller holds the items' local ids.
func (n *Node) flush(ctx context.Context, seqs []uint64) (subjects map[uint64][][16]byte, published bool) {
	if len(seqs) == 0 {
		return nil, true
	}
	items, err := n.records.Items(seqs)
	if err == nil {
		subjects, err = n.processItems(ctx, items, false, nil)
	}
	if err != nil {
		if !errors.Is(err, ErrIssuerUnavailable) {
			n.log.Error("outbox: publication after a write failed; queued", "err", err)
		}
		n.pub.kick()
		return subjects, false
	}
	n.pub.succeeded()
	if n.records.OutboxLen() > 0 {
		// The issuer answers again: what waits goes out now, not at the
		// end of the publisher's back-off.
		n.pub.kick()
	}
	return subjects, true
}

// Start makes the node ready and starts its background publisher, which
// runs until Shutdown. It tokenises nothing: what is missing or changed is
// in the outbox, what is due is in the due index, and a new epoch (or a
// store written before the outbox existed) is queued in the background.
// Calling it again does nothing.
func (n *Node) Start() error { return n.start(true) }

// start is Start; without run, nothing drains the outbox in the background
// (tests drive the publisher's steps themselves).
func (n *Node) start(run bool) error {
	if n.closed.Load() {
		return ErrClosed
	}
	if !n.started.CompareAndSwap(false, true) {
		return nil
	}
	n.pub.gen = n.keyGeneration()
	n.pub.genSeen.Store(n.pub.gen)
	backfill, err := n.records.EnsureEpoch(n.pub.gen)
	if err != nil {
		n.metrics.republish.WithLabelValues("failed").Inc()
		return fmt.Errorf("node: start: %w", err)
	}
	if !backfill {
		n.metrics.republish.WithLabelValues("ok").Inc()
	}
	n.pub.setBackfill(backfill)
	ctx, stop := context.WithCancel(context.Background())
	n.stopPublisher = stop
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.watchOwnKeys()
		close(n.ownWatched)
		if run {
			n.pub.run(ctx)
		}
	}()
	n.ready.Store(true)
	return nil
}

// ErrClosed is returned by Start after Shutdown.
var ErrClosed = errors.New("node: shut down")

// watchOwnKeys watches every lookup key this node has published, for
// "match" notices (one read of the published keys, no issuer call).
func (n *Node) watchOwnKeys() {
	keys, err := n.records.OwnedLookups()
	if err != nil {
		n.log.Error("outbox: reading own keys failed; match notices for earlier entries are off", "err", err)
		return
	}
	n.watchMine(keys)
}

// outboxStatus is the outbox's length and its oldest item's age.
func (n *Node) outboxStatus() (length int, oldest time.Duration) {
	length = n.records.OutboxLen()
	if length == 0 {
		return 0, 0
	}
	if at, ok, err := n.records.OutboxOldest(); err == nil && ok {
		oldest = max(n.opt.Now().Sub(at), 0)
	}
	return length, oldest
}

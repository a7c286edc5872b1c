package locator

import (
	"sync"
	"sync/atomic"
	"time"
)

// Result is what Store.Apply did with a write.
type Result uint8

// Results of Apply.
const (
	// Accepted: the write is new or newer and is now stored.
	Accepted Result = iota + 1
	// Duplicate: the store already holds exactly this write.
	Duplicate
	// Rejected: the write was refused for Outcome.Reason (a stale version
	// is a rejection with ReasonStale).
	Rejected
)

func (r Result) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

// Outcome is the result of one Apply.
type Outcome struct {
	Result Result
	Reason Reason
}

// Counters are the totals of writes by outcome since the store was created
// (persisted by the bolt store).
type Counters struct {
	Accepted   uint64
	Duplicates uint64
	// Rejected counts refused writes and failed opens by reason.
	Rejected [NumReasons]uint64
}

// RejectedTotal sums Rejected.
func (c Counters) RejectedTotal() uint64 {
	var n uint64
	for _, v := range c.Rejected {
		n += v
	}
	return n
}

// Stamp is what a replica holds for an id, without the entry itself: the
// unit of comparison in anti-entropy.
type Stamp struct {
	ID      ID
	Version uint64
	Deleted bool
	// Hash is the entry's DigestHash, which tells apart two different
	// writes with the same version.
	Hash Hash
}

// StampOf returns the stamp of e.
func StampOf(e *Entry) Stamp {
	return Stamp{ID: e.ID(), Version: e.Version, Deleted: e.Deleted, Hash: e.DigestHash()}
}

// Newer reports whether a write with stamp a would replace one with stamp b
// (the order of Compare, with the hash standing in for the encoding; when
// the hashes differ at equal version and flag, both sides fetch the other's
// write and Compare decides).
func (a Stamp) Newer(b Stamp) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	if a.Deleted != b.Deleted {
		return a.Deleted
	}
	return a.Hash != b.Hash
}

// Store is a replica of the locator: a last-writer-wins register per entry
// id, with the incremental digest anti-entropy needs.
//
// All implementations are safe for concurrent use. Entries passed to Apply
// are kept by pointer and must not be modified afterwards (see Entry).
type Store interface {
	// Apply verifies e (signature, policy at now) and merges it. err is
	// nil for Accepted and Duplicate; for Rejected it wraps the reason's
	// sentinel; any other error (I/O) comes with a zero Outcome. Accepted
	// writes are durable when Apply returns (for persistent stores).
	Apply(now time.Time, e *Entry) (Outcome, error)
	// ApplyBatch applies es in order, in one durable commit for
	// persistent stores; it returns one Outcome per entry. The error is
	// for I/O failures only (rejections are in the Outcomes).
	ApplyBatch(now time.Time, es []*Entry) ([]Outcome, error)
	// NoteRejected counts a rejection found outside Apply: an undecodable
	// encoding received from a peer, or an entry that failed to Open.
	NoteRejected(r Reason)
	// Get returns the stored write of id, tombstones included.
	Get(id ID) (*Entry, bool, error)
	// Lookup returns the live (not deleted, not expired at now) entries
	// under key, in id order.
	Lookup(now time.Time, key LookupKey) ([]*Entry, error)
	// Expire drops every entry (tombstones included) whose Expires is at
	// or before now, and returns how many it dropped.
	Expire(now time.Time) (int, error)
	// Len returns the number of stored entries, tombstones included.
	Len() int
	// Counters returns the write counters.
	Counters() Counters
	// Watch subscribes to every new version stored under keys; see Watch.
	Watch(keys ...LookupKey) *Watch
	// DigestDepth is the depth of the digest tree (Policy.DigestDepth).
	DigestDepth() int
	// Bucket returns the digest of bucket index (0 ≤ index < 16^level) at
	// level (0 ≤ level ≤ DigestDepth): the XOR of the DigestHash of
	// every entry whose id starts with those 4×level bits, and their count.
	Bucket(level int, index uint32) Bucket
	// Stamps returns, in id order, up to limit stamps of the entries in
	// bucket (level, index) whose id is ≥ from.
	Stamps(level int, index uint32, from ID, limit int) ([]Stamp, error)
	// Range calls fn for every stored entry in id order until it returns
	// false.
	Range(fn func(*Entry) bool) error
	// Close releases the store; later calls fail with ErrClosed.
	// Close is idempotent.
	Close() error
}

// Watch delivers every new version stored under the watched lookup keys on
// C, in the order the store accepted them. C has Policy.WatchBuffer slots;
// a store never blocks on a slow subscriber: when C is full the event is
// dropped and Dropped grows, and the subscriber should re-read with Lookup.
type Watch struct {
	// C receives the new versions (tombstones included).
	C <-chan *Entry

	c       chan *Entry
	keys    []LookupKey
	dropped atomic.Uint64
	hub     *watchHub
	once    sync.Once
}

// Dropped returns how many events were dropped because C was full.
func (w *Watch) Dropped() uint64 { return w.dropped.Load() }

// Close unsubscribes and closes C. It is idempotent.
func (w *Watch) Close() {
	w.once.Do(func() { w.hub.remove(w) })
}

// watchHub fans accepted writes out to watches; shared by the stores.
// Most watched keys have one watch (a node watches every key it has
// published, 2×10⁶ at 10⁶ records), so the first watch of a key is held in
// one, and only the others in a set per key: a map per key would cost
// about ten times the memory, and its garbage-collection work.
type watchHub struct {
	mu     sync.Mutex
	buf    int
	closed bool
	one    map[LookupKey]*Watch
	more   map[LookupKey]map[*Watch]struct{}
}

func newWatchHub(buf int) *watchHub {
	return &watchHub{buf: buf, one: make(map[LookupKey]*Watch), more: make(map[LookupKey]map[*Watch]struct{})}
}

func (h *watchHub) add(keys []LookupKey) *Watch {
	c := make(chan *Entry, h.buf)
	w := &Watch{C: c, c: c, keys: append([]LookupKey(nil), keys...), hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(c)
		return w
	}
	for _, k := range w.keys {
		switch first, ok := h.one[k]; {
		case !ok:
			h.one[k] = w
		case first != w:
			m := h.more[k]
			if m == nil {
				m = make(map[*Watch]struct{})
				h.more[k] = m
			}
			m[w] = struct{}{}
		}
	}
	return w
}

func (h *watchHub) remove(w *Watch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return // closeAll closed the channel already
	}
	for _, k := range w.keys {
		if h.one[k] == w {
			delete(h.one, k)
			// Another watch of the key, if any, becomes its first.
			for o := range h.more[k] {
				h.one[k] = o
				delete(h.more[k], o)
				break
			}
		} else if m := h.more[k]; m != nil {
			delete(m, w)
		}
		if m, ok := h.more[k]; ok && len(m) == 0 {
			delete(h.more, k)
		}
	}
	close(w.c)
}

func (h *watchHub) notify(e *Entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.one[e.Lookup]
	if !ok {
		return
	}
	h.send(w, e)
	for w := range h.more[e.Lookup] {
		h.send(w, e)
	}
}

func (h *watchHub) send(w *Watch, e *Entry) {
	select {
	case w.c <- e:
	default:
		w.dropped.Add(1)
	}
}

func (h *watchHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	seen := make(map[*Watch]bool)
	shut := func(w *Watch) {
		if !seen[w] {
			seen[w] = true
			close(w.c)
		}
	}
	for _, w := range h.one {
		shut(w)
	}
	for _, m := range h.more {
		for w := range m {
			shut(w)
		}
	}
	h.one, h.more = nil, nil
}

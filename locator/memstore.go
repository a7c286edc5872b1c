package locator

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// MemStore is the in-memory Store, for tests and sim. Per entry it keeps one
// pointer in its leaf bucket and one in the lookup index; the Entry itself is
// shared with whoever else holds it.
type MemStore struct {
	storeState
	leaves   [][]*Entry             // per leaf bucket, sorted by id; guarded by mu
	byLookup map[LookupKey][]*Entry // guarded by mu
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore(p Policy) (*MemStore, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	return &MemStore{
		storeState: newStoreState(p),
		leaves:     make([][]*Entry, 1<<(4*p.DigestDepth)),
		byLookup:   make(map[LookupKey][]*Entry),
	}, nil
}

// decide is the merge rule: what to do with e given the stored write old.
// verify is called only when e would be stored.
func decide(p *Policy, now time.Time, old, e *Entry) Outcome {
	if e.Size() > p.MaxEntrySize {
		return Outcome{Rejected, ReasonTooLarge}
	}
	if old != nil {
		c := Compare(e, old)
		if c == 0 {
			return Outcome{Result: Duplicate}
		}
		if c < 0 {
			return Outcome{Rejected, ReasonStale}
		}
	}
	if r := p.check(now, e); r != ReasonNone {
		return Outcome{Rejected, r}
	}
	return Outcome{Result: Accepted}
}

func outcomeErr(o Outcome, e *Entry) error {
	if o.Result != Rejected {
		return nil
	}
	return fmt.Errorf("apply entry %s version %d: %w", e.ID(), e.Version, o.Reason.Err())
}

// Apply implements Store.
func (s *MemStore) Apply(now time.Time, e *Entry) (Outcome, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Outcome{}, ErrClosed
	}
	o := s.applyLocked(now, e)
	s.mu.Unlock()
	if o.Result == Accepted {
		s.hub.notify(e)
	}
	return o, outcomeErr(o, e)
}

// ApplyBatch implements Store.
func (s *MemStore) ApplyBatch(now time.Time, es []*Entry) ([]Outcome, error) {
	out := make([]Outcome, len(es))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	for i, e := range es {
		out[i] = s.applyLocked(now, e)
	}
	s.mu.Unlock()
	for i, e := range es {
		if out[i].Result == Accepted {
			s.hub.notify(e)
		}
	}
	return out, nil
}

// REQUIRES: s.mu held for writing.
func (s *MemStore) applyLocked(now time.Time, e *Entry) Outcome {
	id := e.ID()
	leaf := BucketIndex(id, s.policy.DigestDepth)
	l := s.leaves[leaf]
	i, found := slices.BinarySearchFunc(l, id, func(x *Entry, id ID) int { return bytes.Compare(x.id[:], id[:]) })
	var old *Entry
	if found {
		old = l[i]
	}
	o := decide(&s.policy, now, old, e)
	switch o.Result {
	case Duplicate:
		s.counters.Duplicates++
		return o
	case Rejected:
		s.counters.Rejected[o.Reason]++
		return o
	}
	if !e.init {
		// An Entry built as a literal: give the store its own sealed copy
		// so that the caches are filled.
		c := *e
		e = c.seal()
	}
	s.counters.Accepted++
	if found {
		s.dig.add(id, old.DigestHash(), -1)
		l[i] = e
		s.replaceLookup(old, e)
	} else {
		s.leaves[leaf] = slices.Insert(l, i, e)
		s.byLookup[e.Lookup] = append(s.byLookup[e.Lookup], e)
		s.n++
	}
	s.dig.add(id, e.DigestHash(), +1)
	return o
}

func (s *MemStore) replaceLookup(old, e *Entry) {
	l := s.byLookup[old.Lookup]
	for i, x := range l {
		if x == old {
			l[i] = e
			return
		}
	}
}

func (s *MemStore) removeLookup(old *Entry) {
	l := s.byLookup[old.Lookup]
	for i, x := range l {
		if x == old {
			l = slices.Delete(l, i, i+1)
			break
		}
	}
	if len(l) == 0 {
		delete(s.byLookup, old.Lookup)
	} else {
		s.byLookup[old.Lookup] = l
	}
}

// NoteRejected implements Store.
func (s *MemStore) NoteRejected(r Reason) {
	if r == ReasonNone || r >= NumReasons {
		return
	}
	s.mu.Lock()
	s.counters.Rejected[r]++
	s.mu.Unlock()
}

// Get implements Store.
func (s *MemStore) Get(id ID) (*Entry, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	l := s.leaves[BucketIndex(id, s.policy.DigestDepth)]
	i, found := slices.BinarySearchFunc(l, id, func(x *Entry, id ID) int { return bytes.Compare(x.id[:], id[:]) })
	if !found {
		return nil, false, nil
	}
	return l[i], true, nil
}

// Lookup implements Store.
func (s *MemStore) Lookup(now time.Time, key LookupKey) ([]*Entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	var out []*Entry
	for _, e := range s.byLookup[key] {
		if !e.Deleted && e.Expires > now.Unix() {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *Entry) int { return bytes.Compare(a.id[:], b.id[:]) })
	return out, nil
}

// Expire implements Store.
func (s *MemStore) Expire(now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	t := now.Unix()
	dropped := 0
	for li, l := range s.leaves {
		keep := l[:0]
		for _, e := range l {
			if e.Expires > t {
				keep = append(keep, e)
				continue
			}
			s.dig.add(e.id, e.hash, -1)
			s.removeLookup(e)
			dropped++
		}
		clear(l[len(keep):])
		s.leaves[li] = keep
	}
	s.n -= dropped
	return dropped, nil
}

// Stamps implements Store.
func (s *MemStore) Stamps(level int, index uint32, from ID, limit int) ([]Stamp, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if level < 0 || level > s.policy.DigestDepth || index >= 1<<(4*uint(level)) {
		return nil, fmt.Errorf("locator: stamps of bucket %d/%d: out of range", level, index)
	}
	lo, hi := BucketBounds(level, index)
	if bytes.Compare(from[:], lo[:]) > 0 {
		lo = from
	}
	depth := s.policy.DigestDepth
	var out []Stamp
	for leaf := BucketIndex(lo, depth); leaf <= BucketIndex(hi, depth) && len(out) < limit; leaf++ {
		l := s.leaves[leaf]
		i, _ := slices.BinarySearchFunc(l, lo, func(x *Entry, id ID) int { return bytes.Compare(x.id[:], id[:]) })
		for ; i < len(l) && len(out) < limit; i++ {
			out = append(out, StampOf(l[i]))
		}
	}
	return out, nil
}

// Range implements Store.
func (s *MemStore) Range(fn func(*Entry) bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	for _, l := range s.leaves {
		for _, e := range l {
			if !fn(e) {
				return nil
			}
		}
	}
	return nil
}

// Close implements Store.
func (s *MemStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.hub.closeAll()
	return nil
}

package locator

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketEntries = []byte("entries") // id → canonical encoding
	bucketLookup  = []byte("lookup")  // lookup ‖ id → nothing
	bucketMeta    = []byte("meta")
	keyCounters   = []byte("counters")
	keySchema     = []byte("schema")
)

const boltSchema = 1

var errNoChange = errors.New("no change")

// BoltStore is the persistent Store on an embedded bbolt database: one file,
// no server. Every accepted write is committed with bbolt's default fsync
// before Apply returns, so an acknowledged write survives a crash. The
// digest tree is kept in memory and rebuilt from the file at open.
//
// Counters are committed with the next accepted write or at Close: a batch
// with nothing to store (duplicates, rejections) rolls back without a disk
// sync, so neither replays nor garbage from peers can force fsyncs.
type BoltStore struct {
	storeState // its mu also serialises writes
	db         *bolt.DB
}

var _ Store = (*BoltStore)(nil)

// OpenBoltStore opens (creating if needed) the store at path and rebuilds
// its digest.
func OpenBoltStore(path string, p Policy) (*BoltStore, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("locator: open bolt store %s: %w", path, err)
	}
	s := &BoltStore{storeState: newStoreState(p), db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEntries, bucketLookup, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchema); v != nil && (len(v) != 1 || v[0] != boltSchema) {
			return fmt.Errorf("unknown schema %x", v)
		}
		if err := meta.Put(keySchema, []byte{boltSchema}); err != nil {
			return err
		}
		s.counters = decodeCounters(meta.Get(keyCounters))
		return tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
			e, err := DecodeEntry(v)
			if err != nil {
				return fmt.Errorf("entry %x: %w", k[:8], err)
			}
			s.dig.add(e.id, e.hash, +1)
			s.n++
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("locator: open bolt store %s: %w", path, err)
	}
	return s, nil
}

func encodeCounters(c Counters) []byte {
	b := make([]byte, 0, 8*(2+int(NumReasons)))
	b = binary.BigEndian.AppendUint64(b, c.Accepted)
	b = binary.BigEndian.AppendUint64(b, c.Duplicates)
	for _, v := range c.Rejected {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

func decodeCounters(b []byte) Counters {
	var c Counters
	next := func() uint64 {
		if len(b) < 8 {
			return 0
		}
		v := binary.BigEndian.Uint64(b)
		b = b[8:]
		return v
	}
	c.Accepted = next()
	c.Duplicates = next()
	for i := range c.Rejected {
		c.Rejected[i] = next()
	}
	return c
}

func lookupKey(e *Entry) []byte {
	k := make([]byte, 0, 48)
	k = append(k, e.Lookup[:]...)
	id := e.ID()
	return append(k, id[:]...)
}

// Apply implements Store.
func (s *BoltStore) Apply(now time.Time, e *Entry) (Outcome, error) {
	out, err := s.ApplyBatch(now, []*Entry{e})
	if err != nil {
		return Outcome{}, err
	}
	return out[0], outcomeErr(out[0], e)
}

// ApplyBatch implements Store: all accepted writes of the batch are
// committed in one transaction.
func (s *BoltStore) ApplyBatch(now time.Time, es []*Entry) ([]Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([]Outcome, len(es))
	type change struct{ old, e *Entry }
	var changes []change
	counters := s.counters
	err := s.db.Update(func(tx *bolt.Tx) error {
		changes = changes[:0]
		counters = s.counters
		ents, lk := tx.Bucket(bucketEntries), tx.Bucket(bucketLookup)
		for i, e := range es {
			if !e.init {
				c := *e
				e = c.seal()
			}
			var old *Entry
			if v := ents.Get(e.id[:]); v != nil {
				var err error
				if old, err = DecodeEntry(v); err != nil {
					return fmt.Errorf("stored entry %s: %w", e.id, err)
				}
			}
			o := decide(&s.policy, now, old, e)
			out[i] = o
			switch o.Result {
			case Duplicate:
				counters.Duplicates++
				continue
			case Rejected:
				counters.Rejected[o.Reason]++
				continue
			}
			counters.Accepted++
			if err := ents.Put(e.id[:], e.enc); err != nil {
				return err
			}
			if err := lk.Put(lookupKey(e), nil); err != nil {
				return err
			}
			changes = append(changes, change{old, e})
		}
		if len(changes) == 0 {
			// Nothing to store: roll back, so duplicates and garbage
			// never cost a disk sync (counters stay in memory).
			return errNoChange
		}
		return tx.Bucket(bucketMeta).Put(keyCounters, encodeCounters(counters))
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return nil, fmt.Errorf("locator: bolt apply: %w", err)
	}
	s.counters = counters
	for _, c := range changes {
		if c.old != nil {
			s.dig.add(c.old.id, c.old.hash, -1)
		} else {
			s.n++
		}
		s.dig.add(c.e.id, c.e.hash, +1)
	}
	for _, c := range changes {
		s.hub.notify(c.e)
	}
	return out, nil
}

// NoteRejected implements Store.
func (s *BoltStore) NoteRejected(r Reason) {
	if r == ReasonNone || r >= NumReasons {
		return
	}
	s.mu.Lock()
	s.counters.Rejected[r]++
	s.mu.Unlock()
}

// Get implements Store.
func (s *BoltStore) Get(id ID) (*Entry, bool, error) {
	var e *Entry
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketEntries).Get(id[:])
		if v == nil {
			return nil
		}
		var err error
		e, err = DecodeEntry(v)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("locator: bolt get %s: %w", id, err)
	}
	return e, e != nil, nil
}

func (s *BoltStore) view(fn func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

// Lookup implements Store.
func (s *BoltStore) Lookup(now time.Time, key LookupKey) ([]*Entry, error) {
	var out []*Entry
	err := s.view(func(tx *bolt.Tx) error {
		ents := tx.Bucket(bucketEntries)
		c := tx.Bucket(bucketLookup).Cursor()
		for k, _ := c.Seek(key[:]); k != nil && bytes.HasPrefix(k, key[:]); k, _ = c.Next() {
			v := ents.Get(k[16:])
			if v == nil {
				continue
			}
			e, err := DecodeEntry(v)
			if err != nil {
				return err
			}
			if !e.Deleted && e.Expires > now.Unix() {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("locator: bolt lookup: %w", err)
	}
	return out, nil
}

// Expire implements Store.
func (s *BoltStore) Expire(now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	var gone []*Entry
	err := s.db.Update(func(tx *bolt.Tx) error {
		gone = gone[:0]
		ents, lk := tx.Bucket(bucketEntries), tx.Bucket(bucketLookup)
		c := ents.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) >= headerSize && int64(binary.BigEndian.Uint64(v[57:65])) > now.Unix() {
				continue
			}
			e, err := DecodeEntry(v)
			if err != nil {
				return fmt.Errorf("stored entry %x: %w", k[:8], err)
			}
			gone = append(gone, e)
		}
		if len(gone) == 0 {
			return errNoChange // nothing expired: no write, no sync
		}
		for _, e := range gone {
			if err := ents.Delete(e.id[:]); err != nil {
				return err
			}
			if err := lk.Delete(lookupKey(e)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyCounters, encodeCounters(s.counters))
	})
	if errors.Is(err, errNoChange) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("locator: bolt expire: %w", err)
	}
	for _, e := range gone {
		s.dig.add(e.id, e.hash, -1)
	}
	s.n -= len(gone)
	return len(gone), nil
}

// Stamps implements Store.
func (s *BoltStore) Stamps(level int, index uint32, from ID, limit int) ([]Stamp, error) {
	if level < 0 || level > s.policy.DigestDepth || index >= 1<<(4*uint(level)) {
		return nil, fmt.Errorf("locator: stamps of bucket %d/%d: out of range", level, index)
	}
	lo, hi := BucketBounds(level, index)
	if bytes.Compare(from[:], lo[:]) > 0 {
		lo = from
	}
	var out []Stamp
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEntries).Cursor()
		for k, v := c.Seek(lo[:]); k != nil && bytes.Compare(k, hi[:]) <= 0 && len(out) < limit; k, v = c.Next() {
			e, err := DecodeEntry(v)
			if err != nil {
				return err
			}
			out = append(out, StampOf(e))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("locator: bolt stamps: %w", err)
	}
	return out, nil
}

// Range implements Store.
func (s *BoltStore) Range(fn func(*Entry) bool) error {
	return s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEntries).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			e, err := DecodeEntry(v)
			if err != nil {
				return err
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}

// Close implements Store: it commits the counters and closes the file.
func (s *BoltStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	counters := s.counters
	s.mu.Unlock()
	s.hub.closeAll()
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyCounters, encodeCounters(counters))
	})
	return errors.Join(err, s.db.Close())
}

package records

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The outbox and what the node has published.
//
// Every record write that changes what the federation should see — a
// creation, a deletion, an objection, a deletion at the retention end —
// stores, in the same bbolt transaction as the record change, an outbox
// [Item] saying what to publish or withdraw. The node's publisher drains
// the outbox, and removes an item only after its entries were published
// (with [Store.Complete], which also records the [Published] state). So an
// acknowledged write is never lost: it is either published or waiting in
// the outbox, across restarts and a kill -9.
//
// The published state (per local id: the epoch, the version and the
// expiry its entries were published with, and their keys) lets the node
// start without tokenising every record again: what is missing or changed
// is in the outbox already, what is due for a refresh is in a due index
// keyed by time, and a new epoch is a one-off background pass
// ([Store.EnqueueEpoch]). The keys let a withdrawal and a "match" or
// contact request need no issuer.
var (
	bucketOutbox    = []byte("outbox")
	bucketPublished = []byte("published")
	bucketDue       = []byte("due")
	bucketMeta      = []byte("meta")
	// bucketOwned maps each published lookup key to its local id.
	bucketOwned = []byte("owned")
	metaEpoch   = []byte("epoch")
	// bucketExpiry indexes the records by retention end (see
	// [Store.DeleteExpired]); metaExpiryIndex marks it built.
	bucketExpiry    = []byte("expiry")
	metaExpiryIndex = []byte("expiry-index")
)

// Outbox operations.
const (
	OpPublish  = "publish"
	OpWithdraw = "withdraw"
)

// Item is one outbox item: publish the record's current version, or
// withdraw its entries at Version. NHSNumber is set on a withdrawal only
// when the record is gone and its published keys are unknown (so the
// publisher can tokenise it to find them); it is secret like the record's.
type Item struct {
	Seq       uint64    `json:"-"`
	Op        string    `json:"op"`
	LocalID   string    `json:"localId"`
	Version   uint64    `json:"version"`
	NHSNumber string    `json:"nhs,omitempty"`
	Expires   time.Time `json:"expires"` // a withdrawal's tombstone expiry
	Enqueued  time.Time `json:"enqueued"`
	// Audit and Actor, when set, are the audit action and actor to record
	// once the item is published, if the write that made it could not
	// publish it at once (and so could not name the subject's keys).
	Audit string `json:"audit,omitempty"`
	Actor string `json:"actor,omitempty"`
}

// String never prints the NHS number.
func (it Item) String() string {
	return fmt.Sprintf("item{seq:%d op:%s localId:%q version:%d}", it.Seq, it.Op, it.LocalID, it.Version)
}

// GoString keeps %#v from printing the NHS number.
func (it Item) GoString() string { return it.String() }

// Note is what a write tells the outbox item it makes: when (the node's
// clock) and, for the audit once published, the action and actor.
type Note struct {
	At           time.Time
	Audit, Actor string
}

// PubKey is one entry's keys, under one purpose's key of one epoch.
// Secret: never log. Epoch 0 means unknown: a key stored before the
// epochs were kept per key (one epoch's keys per record then).
type PubKey struct {
	Purpose string
	Epoch   uint32
	Lookup  [16]byte
	Seal    [32]byte
}

// Published is what the node last published for a record: the key
// generation (Epoch: the node's name for the set of token keys in force
// when it was published) and version, the entries' expiry, when they are
// due for a refresh (zero: never, they expire with the record) and their
// keys — during a key rotation, the keys of every epoch the record is
// published under, so that the old epoch's entries can be withdrawn once
// its key is retired, with no issuer.
type Published struct {
	Epoch     uint32
	Version   uint64
	Expires   time.Time
	RefreshAt time.Time
	Keys      []PubKey
}

// ErrCorrupt is returned for a stored value that cannot be decoded.
var ErrCorrupt = errors.New("records: corrupt stored value")

const pubHeader = 4 + 8 + 8 + 8 + 1

// MarshalBinary encodes p compactly (the node reads every one at start).
func (p Published) MarshalBinary() ([]byte, error) {
	if len(p.Keys) > 255 {
		return nil, fmt.Errorf("%w: %d keys", ErrInvalid, len(p.Keys))
	}
	b := make([]byte, pubHeader, pubHeader+len(p.Keys)*(1+16+32+32))
	binary.BigEndian.PutUint32(b, p.Epoch)
	binary.BigEndian.PutUint64(b[4:], p.Version)
	binary.BigEndian.PutUint64(b[12:], uint64(unixOrZero(p.Expires)))
	binary.BigEndian.PutUint64(b[20:], uint64(unixOrZero(p.RefreshAt)))
	b[28] = byte(len(p.Keys))
	for _, k := range p.Keys {
		if len(k.Purpose) == 0 || len(k.Purpose) > 255 {
			return nil, fmt.Errorf("%w: purpose of %d bytes", ErrInvalid, len(k.Purpose))
		}
		b = append(b, byte(len(k.Purpose)))
		b = append(b, k.Purpose...)
		b = append(b, k.Lookup[:]...)
		b = append(b, k.Seal[:]...)
	}
	if len(p.Keys) > 0 {
		// The keys' epochs follow, after a format byte: a value written
		// before them (no trailer) still decodes, with epochs unknown.
		b = append(b, pubEpochs)
		for _, k := range p.Keys {
			b = binary.BigEndian.AppendUint32(b, k.Epoch)
		}
	}
	return b, nil
}

// pubEpochs marks the trailer of per-key epochs in an encoded Published.
const pubEpochs = 1

// UnmarshalBinary decodes what MarshalBinary made; anything else is
// ErrCorrupt.
func (p *Published) UnmarshalBinary(b []byte) error {
	if len(b) < pubHeader {
		return fmt.Errorf("%w: published state of %d bytes", ErrCorrupt, len(b))
	}
	out := Published{
		Epoch:     binary.BigEndian.Uint32(b),
		Version:   binary.BigEndian.Uint64(b[4:]),
		Expires:   timeOrZero(int64(binary.BigEndian.Uint64(b[12:]))),
		RefreshAt: timeOrZero(int64(binary.BigEndian.Uint64(b[20:]))),
	}
	n := int(b[28])
	rest := b[pubHeader:]
	out.Keys = make([]PubKey, 0, n)
	for range n {
		if len(rest) < 1 || rest[0] == 0 || len(rest) < 1+int(rest[0])+48 {
			return fmt.Errorf("%w: published keys cut short", ErrCorrupt)
		}
		l := int(rest[0])
		var k PubKey
		k.Purpose = string(rest[1 : 1+l])
		copy(k.Lookup[:], rest[1+l:])
		copy(k.Seal[:], rest[1+l+16:])
		out.Keys = append(out.Keys, k)
		rest = rest[1+l+48:]
	}
	if len(rest) > 0 && n > 0 && rest[0] == pubEpochs && len(rest) == 1+4*n {
		for i := range out.Keys {
			out.Keys[i].Epoch = binary.BigEndian.Uint32(rest[1+4*i:])
		}
		rest = nil
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d bytes after the published keys", ErrCorrupt, len(rest))
	}
	*p = out
	return nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func seqKey(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

func dueKey(at time.Time, id string) []byte {
	b := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(b, uint64(at.Unix()))
	return append(b, id...)
}

// enqueue adds an item inside tx and returns its sequence number.
func (s *Store) enqueue(tx *bolt.Tx, it Item) (uint64, error) {
	b := tx.Bucket(bucketOutbox)
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	raw, err := json.Marshal(it)
	if err != nil {
		return 0, fmt.Errorf("records: encode outbox item %q: %w", it.LocalID, err)
	}
	if err := b.Put(seqKey(seq), raw); err != nil {
		return 0, err
	}
	tx.OnCommit(func() { s.outboxLen.Add(1) })
	return seq, nil
}

func publishItem(r Record, note Note) Item {
	return Item{Op: OpPublish, LocalID: r.LocalID, Version: r.Version, Enqueued: note.At.UTC(), Audit: note.Audit, Actor: note.Actor}
}

// withdrawItem is the withdrawal of r's entries at r.Version. The NHS
// number is kept only when the record is gone and the keys are unknown.
func withdrawItem(tx *bolt.Tx, r Record, gone bool, expires time.Time, note Note) Item {
	it := Item{Op: OpWithdraw, LocalID: r.LocalID, Version: r.Version, Expires: expires.UTC(), Enqueued: note.At.UTC(), Audit: note.Audit, Actor: note.Actor}
	if gone && tx.Bucket(bucketPublished).Get([]byte(r.LocalID)) == nil {
		it.NHSNumber = r.NHSNumber
	}
	return it
}

func getPublished(tx *bolt.Tx, id string) (Published, bool, error) {
	raw := tx.Bucket(bucketPublished).Get([]byte(id))
	if raw == nil {
		return Published{}, false, nil
	}
	var p Published
	if err := p.UnmarshalBinary(raw); err != nil {
		return Published{}, false, fmt.Errorf("records: published state of %q: %w", id, err)
	}
	return p, true, nil
}

// OutboxLen returns the number of items in the outbox.
func (s *Store) OutboxLen() int { return int(s.outboxLen.Load()) }

// OutboxOldest returns when the oldest item still in the outbox was
// enqueued; ok is false when the outbox is empty.
func (s *Store) OutboxOldest() (at time.Time, ok bool, err error) {
	if err := s.check(); err != nil {
		return time.Time{}, false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketOutbox).Cursor().First()
		if k == nil {
			return nil
		}
		var it Item
		if err := json.Unmarshal(v, &it); err != nil {
			return fmt.Errorf("records: decode outbox item: %w", err)
		}
		at, ok = it.Enqueued, true
		return nil
	})
	return at, ok, err
}

// Pending returns up to limit outbox items with a sequence number above
// after, oldest first.
func (s *Store) Pending(after uint64, limit int) ([]Item, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var out []Item
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var it Item
			if err := json.Unmarshal(v, &it); err != nil {
				return fmt.Errorf("records: decode outbox item: %w", err)
			}
			it.Seq = binary.BigEndian.Uint64(k)
			out = append(out, it)
		}
		return nil
	})
	return out, err
}

// Items returns the outbox items with these sequence numbers that are
// still there.
func (s *Store) Items(seqs []uint64) ([]Item, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var out []Item
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for _, seq := range seqs {
			v := b.Get(seqKey(seq))
			if v == nil {
				continue
			}
			var it Item
			if err := json.Unmarshal(v, &it); err != nil {
				return fmt.Errorf("records: decode outbox item: %w", err)
			}
			it.Seq = seq
			out = append(out, it)
		}
		return nil
	})
	return out, err
}

// State is what the publisher needs to handle one item: the record as it
// is now (ok false when it is gone) and what was last published for it.
type State struct {
	Record       Record
	Held         bool
	Published    Published
	HasPublished bool
}

// States returns the current state of each local id.
func (s *Store) States(ids []string) (map[string]State, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	out := make(map[string]State, len(ids))
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, id := range ids {
			if _, ok := out[id]; ok {
				continue
			}
			var st State
			var err error
			if st.Record, st.Held, err = getRecord(tx, id); err != nil {
				return err
			}
			if st.Published, st.HasPublished, err = getPublished(tx, id); err != nil {
				return err
			}
			out[id] = st
		}
		return nil
	})
	return out, err
}

// Complete removes the items done and, in the same transaction, records
// what was published (set) or withdrawn for good (unset), with the due
// index kept in step.
func (s *Store) Complete(done []uint64, set map[string]Published, unset []string) error {
	if err := s.check(); err != nil {
		return err
	}
	removed := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		removed = 0
		ob := tx.Bucket(bucketOutbox)
		for _, seq := range done {
			k := seqKey(seq)
			if ob.Get(k) == nil {
				continue
			}
			if err := ob.Delete(k); err != nil {
				return err
			}
			removed++
		}
		pb, db, owned := tx.Bucket(bucketPublished), tx.Bucket(bucketDue), tx.Bucket(bucketOwned)
		clear := func(id string) error {
			old, ok, err := getPublished(tx, id)
			if err != nil || !ok {
				return err
			}
			if !old.RefreshAt.IsZero() {
				if err := db.Delete(dueKey(old.RefreshAt, id)); err != nil {
					return err
				}
			}
			for _, k := range old.Keys {
				if string(owned.Get(k.Lookup[:])) == id {
					if err := owned.Delete(k.Lookup[:]); err != nil {
						return err
					}
				}
			}
			return pb.Delete([]byte(id))
		}
		for _, id := range unset {
			if err := clear(id); err != nil {
				return err
			}
		}
		for id, p := range set {
			if err := clear(id); err != nil {
				return err
			}
			raw, err := p.MarshalBinary()
			if err != nil {
				return err
			}
			if err := pb.Put([]byte(id), raw); err != nil {
				return err
			}
			for _, k := range p.Keys {
				if err := owned.Put(k.Lookup[:], []byte(id)); err != nil {
					return err
				}
			}
			if !p.RefreshAt.IsZero() {
				if err := db.Put(dueKey(p.RefreshAt, id), nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("records: complete outbox items: %w", err)
	}
	s.outboxLen.Add(int64(-removed))
	return nil
}

// EnqueueDue moves every record whose entries are due for a refresh at now
// from the due index to the outbox, and returns how many, and when the next
// one is due (zero: none). A refresh is a new version of the record (the
// federation keeps the highest version of an entry, so the same version
// again would change nothing). It reads only the due index up to now: its
// cost grows with what is due, not with the records held.
func (s *Store) EnqueueDue(now time.Time, note Note) (n int, next time.Time, err error) {
	if err := s.check(); err != nil {
		return 0, time.Time{}, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		n, next = 0, time.Time{}
		c := tx.Bucket(bucketDue).Cursor()
		limit := uint64(now.Unix())
		var keys [][]byte
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) < 8 {
				return fmt.Errorf("%w: due key of %d bytes", ErrCorrupt, len(k))
			}
			if at := binary.BigEndian.Uint64(k); at > limit {
				next = time.Unix(int64(at), 0).UTC()
				break
			}
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			id := string(k[8:])
			if err := tx.Bucket(bucketDue).Delete(k); err != nil {
				return err
			}
			r, ok, err := getRecord(tx, id)
			if err != nil {
				return err
			}
			if !ok || r.Objected {
				continue
			}
			r.Version++
			if err := putRecord(tx, r); err != nil {
				return err
			}
			if _, err := s.enqueue(tx, publishItem(r, note)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, next, err
}

// EnsureEpoch reports whether the records must be published again under
// epoch: false when the store has recorded that every record was (or
// holds no record, which it then records).
func (s *Store) EnsureEpoch(epoch uint32) (backfill bool, err error) {
	if err := s.check(); err != nil {
		return false, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(metaEpoch); len(v) == 4 && binary.BigEndian.Uint32(v) == epoch {
			return nil
		}
		if k, _ := tx.Bucket(bucketRecords).Cursor().First(); k != nil {
			backfill = true
			return nil
		}
		return putEpoch(tx, epoch)
	})
	return backfill, err
}

func putEpoch(tx *bolt.Tx, epoch uint32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], epoch)
	return tx.Bucket(bucketMeta).Put(metaEpoch, b[:])
}

// EnqueueEpoch is one step of publishing every record under a new epoch:
// it enqueues, in one transaction, the records after local id `after`
// (up to limit) that are not objected and not published under epoch, and
// returns the last local id it read ("" once it has read them all, and
// then records epoch as done).
func (s *Store) EnqueueEpoch(epoch uint32, after string, limit int, note Note) (last string, n int, err error) {
	if err := s.check(); err != nil {
		return "", 0, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		last, n = "", 0
		c := tx.Bucket(bucketRecords).Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		read := 0
		for ; k != nil; k, v = c.Next() {
			if read == limit {
				return nil
			}
			read++
			last = string(k)
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("records: decode %q: %w", last, err)
			}
			if r.Objected {
				continue
			}
			if p, ok, err := getPublished(tx, r.LocalID); err != nil {
				return err
			} else if ok && p.Epoch == epoch && p.Version == r.Version {
				continue
			}
			if _, err := s.enqueue(tx, publishItem(r, note)); err != nil {
				return err
			}
			n++
		}
		last = ""
		return putEpoch(tx, epoch)
	})
	return last, n, err
}

// ForEachPublished calls fn with every record's published state, in
// local-id order; fn must not call back into the store.
func (s *Store) ForEachPublished(fn func(id string, p Published) error) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPublished).ForEach(func(k, v []byte) error {
			var p Published
			if err := p.UnmarshalBinary(v); err != nil {
				return fmt.Errorf("records: published state of %q: %w", bytes.Clone(k), err)
			}
			return fn(string(k), p)
		})
	})
}

// PublishedState returns what was last published for the record.
func (s *Store) PublishedState(id string) (p Published, ok bool, err error) {
	if err := s.check(); err != nil {
		return Published{}, false, err
	}
	err = s.db.View(func(tx *bolt.Tx) (err error) {
		p, ok, err = getPublished(tx, id)
		return err
	})
	return p, ok, err
}

// Owner returns the local id and keys of this node's published entry under
// lookup; ok is false when the node has no live entry under it.
func (s *Store) Owner(lookup [16]byte) (id string, key PubKey, ok bool, err error) {
	if err := s.check(); err != nil {
		return "", PubKey{}, false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketOwned).Get(lookup[:])
		if v == nil {
			return nil
		}
		p, found, err := getPublished(tx, string(v))
		if err != nil || !found {
			return err
		}
		for _, k := range p.Keys {
			if k.Lookup == lookup {
				id, key, ok = string(v), k, true
			}
		}
		return nil
	})
	return id, key, ok, err
}

// OwnedLookups returns every lookup key the node has a published entry
// under (the keys only: one read of a small index).
func (s *Store) OwnedLookups() ([][16]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var out [][16]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOwned)
		out = make([][16]byte, 0, b.Stats().KeyN)
		return b.ForEach(func(k, _ []byte) error {
			if len(k) != 16 {
				return fmt.Errorf("%w: owned key of %d bytes", ErrCorrupt, len(k))
			}
			out = append(out, [16]byte(k))
			return nil
		})
	})
	return out, err
}

// StillOwned returns those of keys the node still has a published entry
// under, in order.
func (s *Store) StillOwned(keys [][16]byte) ([][16]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var out [][16]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOwned)
		for _, k := range keys {
			if b.Get(k[:]) != nil {
				out = append(out, k)
			}
		}
		return nil
	})
	return out, err
}

package records

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Objections cover the person.
//
// A person's objection at this agency is kept as a marker: HMAC-SHA256,
// under the store's marker key (node-local, 32 bytes, given to [Open]), of
// the canonical NHS number. The marker names the person only to someone
// who holds the key; an unkeyed hash of a ten-digit number is reversed by
// trying them all. Markers live in the objections bucket and are never
// deleted by the retention sweep: an objection outlives every record of
// the person, and is ended only by [Store.WithdrawObjection].
//
// A person index (marker ‖ local id) finds the records of a person without
// reading every record. While a marker stands, every record of the person
// is [Record.Objected]: the objection marks those held in the same
// transaction as the marker, and [Store.Put] marks a new one as it stores
// it (stored, never published: the agency keeps its case record). Every
// path that publishes (the outbox, the refresh of due entries, a new
// epoch's pass) skips an objected record, so none publishes the person
// while the objection stands.
var (
	bucketObjections = []byte("objections")
	bucketPersons    = []byte("persons")
	// metaPersonIndex marks the person index built (and objected records
	// of an older store given markers); metaMarkerCheck holds a keyed
	// check value of the marker key, so that a store is never read with
	// another key (its markers would match nobody).
	metaPersonIndex = []byte("person-index")
	metaMarkerCheck = []byte("marker-key-check")
)

// MarkerKeySize is the size of the marker key (bytes).
const MarkerKeySize = 32

// Errors of objections.
var (
	// ErrNoObjection: no objection stands for the person.
	ErrNoObjection = errors.New("records: no objection stands for this person")
	// ErrMarkerKey: the marker key is not the one the store was made
	// with (or not [MarkerKeySize] bytes).
	ErrMarkerKey = errors.New("records: objection marker key does not match this store")
)

// marker is the person's objection marker under the store's key.
func (s *Store) marker(nhs string) []byte { return Marker(s.markerKey, nhs) }

// Marker is the objection marker of the person with the canonical number
// nhs under key: HMAC-SHA256, with a label so that the key serves nothing
// else. Secret like the number to anyone who holds the key: never log it.
func Marker(key []byte, nhs string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("signpost/v1 objection-marker\x00"))
	m.Write([]byte(nhs))
	return m.Sum(nil)
}

// markerCheck is the value stored to recognise the marker key.
func markerCheck(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("signpost/v1 marker-key-check"))
	return m.Sum(nil)
}

// checkMarkerKey records the key's check value in a new store, and refuses
// a key another store's markers were made with.
func checkMarkerKey(tx *bolt.Tx, key []byte) error {
	want := markerCheck(key)
	meta := tx.Bucket(bucketMeta)
	got := meta.Get(metaMarkerCheck)
	if got == nil {
		return meta.Put(metaMarkerCheck, want)
	}
	if !hmac.Equal(got, want) {
		return ErrMarkerKey
	}
	return nil
}

// personKey is the person index's key of a record.
func personKey(marker []byte, id string) []byte {
	return append(bytes.Clone(marker), id...)
}

// objection is a marker's stored value.
type objection struct {
	Since time.Time `json:"since"`
}

// buildPersonIndex indexes every record by its person once, in a store
// made before the index existed, and gives each record an older node
// objected to a marker, so that its objection covers the person too.
func (s *Store) buildPersonIndex(tx *bolt.Tx) error {
	if tx.Bucket(bucketMeta).Get(metaPersonIndex) != nil {
		return nil
	}
	pb, ob := tx.Bucket(bucketPersons), tx.Bucket(bucketObjections)
	err := tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("records: decode %q: %w", bytes.Clone(k), err)
		}
		m := s.marker(r.NHSNumber)
		if err := pb.Put(personKey(m, r.LocalID), nil); err != nil {
			return err
		}
		if r.Objected && ob.Get(m) == nil {
			raw, _ := json.Marshal(objection{Since: r.Created})
			return ob.Put(m, raw)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(metaPersonIndex, []byte{1})
}

// objectedLocked reports whether an objection stands for the marker.
func objectedLocked(tx *bolt.Tx, marker []byte) bool {
	return tx.Bucket(bucketObjections).Get(marker) != nil
}

// personIDs returns the local ids of the person's records, in order.
func personIDs(tx *bolt.Tx, marker []byte) []string {
	var ids []string
	c := tx.Bucket(bucketPersons).Cursor()
	for k, _ := c.Seek(marker); k != nil && bytes.HasPrefix(k, marker); k, _ = c.Next() {
		ids = append(ids, string(k[len(marker):]))
	}
	return ids
}

// Objection is the outcome of an objection or of its withdrawal: the local
// ids of the person's records it covers, and the outbox items it made
// (withdrawals, or publications once withdrawn) with their sequence
// numbers. Already is true for an objection that stood already.
type Objection struct {
	Already bool
	IDs     []string
	Seqs    []uint64
}

// ObjectPerson records the person's objection (nhs is the canonical
// number): it stores the person's marker and, in the same transaction,
// marks every record of the person objected, with the outbox items that
// withdraw their entries. Objecting again is not an error (Already).
func (s *Store) ObjectPerson(nhs string, note Note) (Objection, error) {
	if err := s.check(); err != nil {
		return Objection{}, err
	}
	var out Objection
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		out, err = s.objectLocked(tx, s.marker(nhs), note)
		return err
	})
	return out, err
}

// Object records the objection of the person of the record with the local
// id: as [Store.ObjectPerson] with that record's number. ErrNotFound when
// there is no such record.
func (s *Store) Object(id string, note Note) (Objection, error) {
	if err := s.check(); err != nil {
		return Objection{}, err
	}
	var out Objection
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := existingRecord(tx, id)
		if err != nil {
			return err
		}
		out, err = s.objectLocked(tx, s.marker(r.NHSNumber), note)
		return err
	})
	return out, err
}

func (s *Store) objectLocked(tx *bolt.Tx, marker []byte, note Note) (Objection, error) {
	out := Objection{Already: objectedLocked(tx, marker)}
	if !out.Already {
		raw, err := json.Marshal(objection{Since: note.At.UTC()})
		if err != nil {
			return Objection{}, err
		}
		if err := tx.Bucket(bucketObjections).Put(marker, raw); err != nil {
			return Objection{}, err
		}
	}
	for _, id := range personIDs(tx, marker) {
		out.IDs = append(out.IDs, id)
		r, ok, err := getRecord(tx, id)
		if err != nil {
			return Objection{}, err
		}
		if !ok || r.Objected {
			continue
		}
		r.Objected = true
		r.Version++
		if err := putRecord(tx, r); err != nil {
			return Objection{}, err
		}
		seq, err := s.enqueue(tx, withdrawItem(tx, r, false, r.RetainUntil, note))
		if err != nil {
			return Objection{}, err
		}
		out.Seqs = append(out.Seqs, seq)
	}
	return out, nil
}

// WithdrawObjection ends the person's objection: it deletes the marker
// and, in the same transaction, clears the objection from every record of
// the person still held, each with the outbox item that publishes it
// again (none for a record past its retention end at now: the sweep
// deletes it). ErrNoObjection when none stands.
func (s *Store) WithdrawObjection(nhs string, now time.Time, note Note) (Objection, error) {
	if err := s.check(); err != nil {
		return Objection{}, err
	}
	var out Objection
	err := s.db.Update(func(tx *bolt.Tx) error {
		out = Objection{}
		marker := s.marker(nhs)
		if !objectedLocked(tx, marker) {
			return ErrNoObjection
		}
		if err := tx.Bucket(bucketObjections).Delete(marker); err != nil {
			return err
		}
		for _, id := range personIDs(tx, marker) {
			r, ok, err := getRecord(tx, id)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			out.IDs = append(out.IDs, id)
			if !r.Objected {
				continue
			}
			r.Objected = false
			r.Version++
			if err := putRecord(tx, r); err != nil {
				return err
			}
			if r.Expired(now) {
				continue
			}
			seq, err := s.enqueue(tx, publishItem(r, note))
			if err != nil {
				return err
			}
			out.Seqs = append(out.Seqs, seq)
		}
		return nil
	})
	return out, err
}

// PersonOf returns the local ids of the records of the same person as the
// record with the local id (itself included). ErrNotFound when there is
// no such record.
func (s *Store) PersonOf(id string) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := existingRecord(tx, id)
		if err != nil {
			return err
		}
		ids = personIDs(tx, s.marker(r.NHSNumber))
		return nil
	})
	return ids, err
}

// Person returns the local ids of the person's records (nhs is the
// canonical number) and whether an objection stands for the person.
func (s *Store) Person(nhs string) (ids []string, objected bool, err error) {
	if err := s.check(); err != nil {
		return nil, false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		m := s.marker(nhs)
		ids, objected = personIDs(tx, m), objectedLocked(tx, m)
		return nil
	})
	return ids, objected, err
}

// Objections returns how many objections stand.
func (s *Store) Objections() (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketObjections).Stats().KeyN
		return nil
	})
	return n, err
}

package records

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Synthetic people (999 range).
const (
	personA = "9990000018"
	personB = "9990000026"
)

// recFor is a record of nhs under id retained until retain.
func recFor(id, nhs string, until time.Time) Record {
	r := rec(id, nhs)
	r.RetainUntil = until
	return r
}

// An objection covers every record of the person held, and every record of
// the person stored later: objected, with no outbox item; the other
// people's records are untouched, and no publishing path (a refresh, a new
// epoch's pass) picks the person's records up.
func TestObjectionCoversPerson(t *testing.T) {
	s := openTest(t)
	for _, r := range []Record{rec("a1", personA), rec("a2", personA), rec("b1", personB)} {
		if _, err := s.Put(r, Note{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Complete([]uint64{1, 2, 3}, nil, nil); err != nil {
		t.Fatal(err)
	}
	o, err := s.ObjectPerson(personA, Note{At: retain.Add(-time.Hour)})
	if err != nil || o.Already || !slices.Equal(o.IDs, []string{"a1", "a2"}) || len(o.Seqs) != 2 {
		t.Fatalf("object: %v %+v", err, o)
	}
	items, err := s.Items(o.Seqs)
	if err != nil || len(items) != 2 {
		t.Fatalf("withdrawal items: %v %v", items, err)
	}
	for _, it := range items {
		if it.Op != OpWithdraw || it.NHSNumber != "" {
			t.Fatalf("item %v: want a withdrawal without the number", it)
		}
	}
	tests := []struct {
		id       string
		objected bool
	}{{"a1", true}, {"a2", true}, {"b1", false}}
	for _, tt := range tests {
		if r, err := s.Get(tt.id); err != nil || r.Objected != tt.objected {
			t.Fatalf("%s: objected %v, want %v (%v)", tt.id, r.Objected, tt.objected, err)
		}
	}

	before := s.OutboxLen()
	res, err := s.Put(rec("a3", personA), Note{})
	if err != nil || !res.Created || !res.Record.Objected || res.Seq != 0 || s.OutboxLen() != before {
		t.Fatalf("a later record of the person: %v %+v, outbox %d→%d", err, res, before, s.OutboxLen())
	}
	if ids, objected, err := s.Person(personA); err != nil || !objected || !slices.Equal(ids, []string{"a1", "a2", "a3"}) {
		t.Fatalf("person: %v %v %v", ids, objected, err)
	}
	if _, err := s.EnsureEpoch(9); err != nil {
		t.Fatal(err)
	}
	if _, n, err := s.EnqueueEpoch(9, "", 100, Note{}); err != nil || n != 1 {
		t.Fatalf("a new epoch's pass enqueued %d (%v); want b1 alone", n, err)
	}
	if o, err := s.ObjectPerson(personA, Note{}); err != nil || !o.Already || len(o.Seqs) != 0 {
		t.Fatalf("objecting again: %v %+v", err, o)
	}
}

// The marker outlives the person's records: after the retention sweep
// deleted them, and across a reopen, a new record of the person is stored
// objected.
func TestObjectionOutlivesRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	s, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2035, 6, 1, 12, 0, 0, 0, time.UTC)
	if _, err := s.Put(recFor("old", personA, now.Add(time.Hour)), Note{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Object("old", Note{At: now}); err != nil {
		t.Fatal(err)
	}
	if gone, _, err := s.DeleteExpired(now.Add(2*time.Hour), 10, now, Note{}); err != nil || len(gone) != 1 {
		t.Fatalf("sweep: %v %v", gone, err)
	}
	if ids, objected, err := s.Person(personA); err != nil || !objected || len(ids) != 0 {
		t.Fatalf("after the sweep: ids %v objected %v (%v)", ids, objected, err)
	}
	s.Close()
	s, err = Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Put(recFor("new", personA, now.Add(48*time.Hour)), Note{})
	if err != nil || !res.Created || !res.Record.Objected || res.Seq != 0 {
		t.Fatalf("re-import under another id: %v %+v", err, res)
	}
	if n, err := s.Objections(); err != nil || n != 1 {
		t.Fatalf("objections: %d %v", n, err)
	}
}

// Withdrawing the objection clears it from every record of the person
// still held, each with a publication (none for one past its retention
// end), and later records are published again.
func TestWithdrawObjection(t *testing.T) {
	s := openTest(t)
	now := time.Date(2035, 6, 1, 12, 0, 0, 0, time.UTC)
	if _, err := s.WithdrawObjection(personA, now, Note{}); !errors.Is(err, ErrNoObjection) {
		t.Fatalf("withdrawing none: %v", err)
	}
	for _, r := range []Record{recFor("a1", personA, now.Add(time.Hour)), recFor("a2", personA, now.Add(-time.Hour))} {
		if _, err := s.Put(r, Note{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ObjectPerson(personA, Note{}); err != nil {
		t.Fatal(err)
	}
	w, err := s.WithdrawObjection(personA, now, Note{Audit: "objection-withdrawn"})
	if err != nil || !slices.Equal(w.IDs, []string{"a1", "a2"}) || len(w.Seqs) != 1 {
		t.Fatalf("withdraw: %v %+v; want both cleared, a1 alone published (a2 is past retention)", err, w)
	}
	items, err := s.Items(w.Seqs)
	if err != nil || len(items) != 1 || items[0].Op != OpPublish || items[0].LocalID != "a1" || items[0].Version != 3 || items[0].Audit != "objection-withdrawn" {
		t.Fatalf("publication: %v %v", items, err)
	}
	for _, id := range []string{"a1", "a2"} {
		if r, err := s.Get(id); err != nil || r.Objected || r.Version != 3 {
			t.Fatalf("%s after withdrawal: %v %v", id, r, err)
		}
	}
	if res, err := s.Put(rec("a3", personA), Note{}); err != nil || res.Record.Objected || res.Seq == 0 {
		t.Fatalf("a later record: %v %+v", err, res)
	}
	if _, err := s.WithdrawObjection(personA, now, Note{}); !errors.Is(err, ErrNoObjection) {
		t.Fatalf("withdrawing twice: %v", err)
	}
}

// The marker is a keyed hash: it is neither the number nor its unkeyed
// hash, another key gives another, and a store refuses a key it was not
// made with (its markers would match nobody).
func TestMarkerIsKeyed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	s, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ObjectPerson(personA, Note{}); err != nil {
		t.Fatal(err)
	}
	var markers [][]byte
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketObjections).ForEach(func(k, v []byte) error {
			markers = append(markers, bytes.Clone(k), bytes.Clone(v))
			return nil
		})
	})
	plain := sha256.Sum256([]byte(personA))
	if len(markers) != 2 || bytes.Contains(markers[0], []byte(personA)) || bytes.Contains(markers[1], []byte(personA)) || bytes.Equal(markers[0], plain[:]) {
		t.Fatalf("stored objection %x: want one keyed marker, no number", markers)
	}
	other := &Store{markerKey: bytes.Repeat([]byte{8}, MarkerKeySize)}
	if bytes.Equal(other.marker(personA), markers[0]) {
		t.Fatal("another key gives the same marker")
	}
	s.Close()
	tests := []struct {
		name string
		key  []byte
	}{
		{"another key", other.markerKey},
		{"short key", testKey[:16]},
		{"no key", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Open(path, tt.key); !errors.Is(err, ErrMarkerKey) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("open: %v, want ErrMarkerKey", err)
			}
		})
	}
}

// A store an older node left, with a record objected one at a time, gets
// the person index and a marker for that person at open: the objection
// covers the person's later records too.
func TestPersonIndexBuiltForOldStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(rec("kept", personB), Note{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Object("kept", Note{}); err != nil {
		t.Fatal(err)
	}
	// Make it an old store: no index, no marker, no mark.
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPersons, bucketObjections} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete(metaPersonIndex)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ids, objected, err := s.Person(personB); err != nil || !objected || !slices.Equal(ids, []string{"kept"}) {
		t.Fatalf("old store's person: %v %v %v", ids, objected, err)
	}
	if res, err := s.Put(rec("again", personB), Note{}); err != nil || !res.Record.Objected {
		t.Fatalf("later record: %v %+v", err, res)
	}
}

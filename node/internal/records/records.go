package records

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound = errors.New("records: no such record")
	ErrExists   = errors.New("records: record exists")
	ErrInvalid  = errors.New("records: invalid record")
	ErrClosed   = errors.New("records: store closed")
)

// MaxLocalIDLen bounds a local id (bytes).
const MaxLocalIDLen = 128

// MaxCategoryLen bounds a category (bytes).
const MaxCategoryLen = 64

// ValidLocalID reports whether id is a local id the node stores: 1 to
// [MaxLocalIDLen] ASCII letters, digits and the marks - _ . : +, starting
// with a letter or a digit, with no "..". A local id is shown on the page,
// in audit lines, in notices to staff and in URL paths
// (DELETE /v1/records/{localId}); this set is safe in all of them without
// escaping rules of their own: no path separator, no dot segment, no "#"
// (a URL fragment), no control, bidi or other invisible character, nothing
// HTML or a shell treats specially.
func ValidLocalID(id string) bool {
	if id == "" || len(id) > MaxLocalIDLen || !alnum(id[0]) || strings.Contains(id, "..") {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !alnum(c) && !strings.ContainsRune("-_.:+", rune(c)) {
			return false
		}
	}
	return true
}

// ValidCategory reports whether c is a service category: a slug of 1 to
// [MaxCategoryLen] bytes, lowercase ASCII letters and digits in words
// joined by single hyphens ("children-social-care", "gp"). A category
// travels in sealed entries to every other agency and is shown by their
// clients, which may not escape it.
func ValidCategory(c string) bool {
	if c == "" || len(c) > MaxCategoryLen || c[0] == '-' || c[len(c)-1] == '-' || strings.Contains(c, "--") {
		return false
	}
	for i := 0; i < len(c); i++ {
		if x := c[i]; (x < 'a' || x > 'z') && (x < '0' || x > '9') && x != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

var (
	bucketRecords  = []byte("records")
	bucketVersions = []byte("versions")
)

// Record is one of the agency's records. NHSNumber is the canonical 10-digit
// form and is secret: never log or return it.
type Record struct {
	LocalID     string    `json:"localId"`
	NHSNumber   string    `json:"nhs"`
	Category    string    `json:"category,omitempty"`
	RetainUntil time.Time `json:"retainUntil"`
	Created     time.Time `json:"created"`
	// Version is the entry version last used for this record's entries.
	Version uint64 `json:"version"`
	// Objected is set when the person objected: the record is withdrawn from
	// the federation and never published again.
	Objected bool `json:"objected,omitempty"`
	// RetainDefaulted, on a record being put (never stored), says its
	// RetainUntil is the node's default, not the caller's: a retry of the
	// same record later then matches an existing one whatever its
	// retention, which was the default of its own, earlier, moment.
	RetainDefaulted bool `json:"-"`
}

// String never prints the NHS number.
func (r Record) String() string {
	return fmt.Sprintf("record{localId:%q category:%q objected:%v}", r.LocalID, r.Category, r.Objected)
}

// GoString keeps %#v from printing the NHS number.
func (r Record) GoString() string { return r.String() }

// Validate checks the shape of a record (not the NHS number's check digit:
// that is the wasm module's job and is done before a record reaches here).
func (r Record) Validate() error {
	switch {
	case r.LocalID == "":
		return fmt.Errorf("%w: localId is empty", ErrInvalid)
	case len(r.LocalID) > MaxLocalIDLen:
		return fmt.Errorf("%w: localId longer than %d bytes", ErrInvalid, MaxLocalIDLen)
	case !ValidLocalID(r.LocalID):
		return fmt.Errorf("%w: localId must be letters, digits and - _ . : + (starting with a letter or digit, no \"..\")", ErrInvalid)
	case len(r.Category) > MaxCategoryLen:
		return fmt.Errorf("%w: category longer than %d bytes", ErrInvalid, MaxCategoryLen)
	case r.Category != "" && !ValidCategory(r.Category):
		return fmt.Errorf("%w: category must be lowercase letters and digits in words joined by single hyphens", ErrInvalid)
	case len(r.NHSNumber) != 10:
		return fmt.Errorf("%w: nhs number not in canonical form", ErrInvalid)
	case r.RetainUntil.IsZero():
		return fmt.Errorf("%w: retainUntil is missing", ErrInvalid)
	}
	for i := 0; i < len(r.NHSNumber); i++ {
		if r.NHSNumber[i] < '0' || r.NHSNumber[i] > '9' {
			return fmt.Errorf("%w: nhs number not in canonical form", ErrInvalid)
		}
	}
	return nil
}

// Store is a bbolt-backed record store. It is safe for concurrent use.
type Store struct {
	db        *bolt.DB
	markerKey []byte // the objection markers' key (objections.go)
	closed    atomic.Bool
	outboxLen atomic.Int64
}

// Open opens (creating if needed) the store at path. markerKey is the
// node-local secret key of its objection markers ([MarkerKeySize] bytes;
// see objections.go); a store refuses any key but the one it was first
// opened with (ErrMarkerKey).
func Open(path string, markerKey []byte) (*Store, error) {
	if len(markerKey) != MarkerKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrMarkerKey, len(markerKey), MarkerKeySize)
	}
	s := &Store{markerKey: bytes.Clone(markerKey)}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("records: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketVersions, bucketOutbox, bucketPublished, bucketDue, bucketMeta, bucketExpiry, bucketOwned, bucketObjections, bucketPersons} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := checkMarkerKey(tx, markerKey); err != nil {
			return err
		}
		if err := buildExpiryIndex(tx); err != nil {
			return err
		}
		return s.buildPersonIndex(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("records: init %s: %w", path, err)
	}
	s.db = db
	// The outbox's length: a walk of its pages, which grows with what is
	// pending, not with the records held.
	err = db.View(func(tx *bolt.Tx) error {
		s.outboxLen.Store(int64(tx.Bucket(bucketOutbox).Stats().KeyN))
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("records: init %s: %w", path, err)
	}
	return s, nil
}

// Close closes the store; it is idempotent.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	return s.db.Close()
}

func (s *Store) check() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

func getVersion(tx *bolt.Tx, id string) uint64 {
	v := tx.Bucket(bucketVersions).Get([]byte(id))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putVersion(tx *bolt.Tx, id string, v uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return tx.Bucket(bucketVersions).Put([]byte(id), b[:])
}

func getRecord(tx *bolt.Tx, id string) (Record, bool, error) {
	raw := tx.Bucket(bucketRecords).Get([]byte(id))
	if raw == nil {
		return Record{}, false, nil
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return Record{}, false, fmt.Errorf("records: decode %q: %w", id, err)
	}
	return r, true, nil
}

// existingRecord is getRecord for callers that need the record to exist:
// ErrNotFound when it does not.
func existingRecord(tx *bolt.Tx, id string) (Record, error) {
	r, ok, err := getRecord(tx, id)
	if err == nil && !ok {
		err = ErrNotFound
	}
	return r, err
}

func putRecord(tx *bolt.Tx, r Record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("records: encode %q: %w", r.LocalID, err)
	}
	if err := tx.Bucket(bucketRecords).Put([]byte(r.LocalID), raw); err != nil {
		return err
	}
	return putVersion(tx, r.LocalID, r.Version)
}

// putLocked inserts r inside tx, with its outbox item. An identical
// existing record (same number, category, retention — any retention when
// r's is only the default) is accepted unchanged (idempotent retry);
// anything else existing is ErrExists. A record of a person whose
// objection stands is stored objected, with no outbox item: the agency
// keeps its record, the federation never sees it.
func (s *Store) putLocked(tx *bolt.Tx, r Record, note Note) (Record, bool, uint64, error) {
	if err := r.Validate(); err != nil {
		return Record{}, false, 0, err
	}
	old, ok, err := getRecord(tx, r.LocalID)
	if err != nil {
		return Record{}, false, 0, err
	}
	if ok {
		if old.NHSNumber == r.NHSNumber && old.Category == r.Category && (r.RetainDefaulted || old.RetainUntil.Equal(r.RetainUntil)) {
			return old, false, 0, nil
		}
		return old, false, 0, ErrExists
	}
	marker := s.marker(r.NHSNumber)
	r.Version = getVersion(tx, r.LocalID) + 1
	r.Objected, r.RetainDefaulted = objectedLocked(tx, marker), false
	if err := putRecord(tx, r); err != nil {
		return Record{}, false, 0, err
	}
	if err := tx.Bucket(bucketExpiry).Put(expiryKey(r), nil); err != nil {
		return Record{}, false, 0, err
	}
	if err := tx.Bucket(bucketPersons).Put(personKey(marker, r.LocalID), nil); err != nil {
		return Record{}, false, 0, err
	}
	if r.Objected {
		return r, true, 0, nil
	}
	seq, err := s.enqueue(tx, publishItem(r, note))
	if err != nil {
		return Record{}, false, 0, err
	}
	return r, true, seq, nil
}

// Put stores a new record, with the outbox item that publishes it, and
// returns it with its version and the item's sequence number (Seq). Created
// is false (and no item made) when an identical record already existed (an
// idempotent retry). A record of a person whose objection stands is
// stored with Objected set and no item (Seq 0).
func (s *Store) Put(r Record, note Note) (RowResult, error) {
	res, err := s.PutBatch([]Record{r}, note)
	if err != nil {
		return RowResult{}, err
	}
	return res[0], res[0].Err
}

// RowResult is the outcome of one row of [Store.PutBatch]. Seq is the
// sequence number of the outbox item of a created record.
type RowResult struct {
	Record  Record
	Created bool
	Seq     uint64
	Err     error
}

// PutBatch stores many records, and their outbox items, in one
// transaction; each row succeeds or fails on its own (a bad row never
// loses a good one).
func (s *Store) PutBatch(rs []Record, note Note) ([]RowResult, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	out := make([]RowResult, len(rs))
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i, r := range rs {
			st, created, seq, err := s.putLocked(tx, r, note)
			if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExists) {
				return err
			}
			out[i] = RowResult{Record: st, Created: created, Seq: seq, Err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns the record with the local id.
func (s *Store) Get(id string) (Record, error) {
	if err := s.check(); err != nil {
		return Record{}, err
	}
	var r Record
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		r, err = existingRecord(tx, id)
		return err
	})
	return r, err
}

// Delete removes the record and returns it as it was, with Version advanced
// for the withdrawal, and the sequence number of the outbox item that
// withdraws its entries (0 for an objected record: its entries were
// withdrawn already). The version survives deletion.
func (s *Store) Delete(id string, note Note) (Record, uint64, error) {
	if err := s.check(); err != nil {
		return Record{}, 0, err
	}
	var r Record
	var seq uint64
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if r, err = existingRecord(tx, id); err != nil {
			return err
		}
		r.Version++
		if err := tx.Bucket(bucketRecords).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketExpiry).Delete(expiryKey(r)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPersons).Delete(personKey(s.marker(r.NHSNumber), id)); err != nil {
			return err
		}
		if err := putVersion(tx, id, r.Version); err != nil {
			return err
		}
		if r.Objected {
			return nil
		}
		seq, err = s.enqueue(tx, withdrawItem(tx, r, true, r.RetainUntil, note))
		return err
	})
	return r, seq, err
}

// Expired reports whether the record's retention has ended at now. It is
// read to the second, as the record's entries expire (the federation
// stores whole seconds).
func (r Record) Expired(now time.Time) bool {
	return r.RetainUntil.Unix() <= now.Unix()
}

// Expired is a record deleted at its retention end, with the keys of the
// entries it had published (nil when it had none, or they were withdrawn).
type Expired struct {
	Record Record
	Keys   []PubKey
}

// DeleteExpired removes, in one transaction, up to limit records whose
// retention has ended at now (objected ones included: retention ends
// holding the NHS number; the person's objection marker stays, see
// objections.go), and enqueues the withdrawal of the entries of
// each that had any published, as tombstones expiring at tombstone (the
// NHS number is not kept in the item: an entry whose keys are unknown
// expires by itself). It returns them as they were, each with Version
// advanced for the withdrawal (the version survives, as for Delete), and
// the earliest retention end among the records it kept (zero if it kept
// none). A caller that gets limit records back calls again. It reads the
// expiry index only up to now, so its cost grows with what is due, not
// with the records held; when nothing is due it only reads: the periodic
// sweep neither writes nor syncs.
func (s *Store) DeleteExpired(now time.Time, limit int, tombstone time.Time, note Note) (deleted []Expired, next time.Time, err error) {
	if err := s.check(); err != nil {
		return nil, time.Time{}, err
	}
	if limit < 1 {
		return nil, time.Time{}, fmt.Errorf("%w: limit %d < 1", ErrInvalid, limit)
	}
	due := false
	err = s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketExpiry).Cursor().First()
		if k != nil {
			at := expiryTime(k)
			due, next = !at.After(now), at
		}
		return nil
	})
	if err != nil || !due {
		return nil, next, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		deleted, next = nil, time.Time{}
		xb := tx.Bucket(bucketExpiry)
		var keys [][]byte
		c := xb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if at := expiryTime(k); at.After(now) || len(keys) == limit {
				next = at
				break
			}
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := xb.Delete(k); err != nil {
				return err
			}
			id := string(k[8:])
			r, ok, err := getRecord(tx, id)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			r.Version++
			if err := tx.Bucket(bucketRecords).Delete([]byte(id)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketPersons).Delete(personKey(s.marker(r.NHSNumber), id)); err != nil {
				return err
			}
			if err := putVersion(tx, id, r.Version); err != nil {
				return err
			}
			e := Expired{Record: r}
			if p, ok, err := getPublished(tx, id); err != nil {
				return err
			} else if ok && !r.Objected {
				e.Keys = p.Keys
				it := withdrawItem(tx, r, false, tombstone, note)
				if _, err := s.enqueue(tx, it); err != nil {
					return err
				}
			}
			deleted = append(deleted, e)
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("records: delete expired: %w", err)
	}
	return deleted, next, nil
}

// expiryKey orders the expiry index by retention end, to the second.
func expiryKey(r Record) []byte { return dueKey(r.RetainUntil, r.LocalID) }

func expiryTime(k []byte) time.Time {
	if len(k) < 8 {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(k)), 0).UTC()
}

// buildExpiryIndex indexes every record by retention end, once, in a store
// made before the index existed.
func buildExpiryIndex(tx *bolt.Tx) error {
	if tx.Bucket(bucketMeta).Get(metaExpiryIndex) != nil {
		return nil
	}
	xb := tx.Bucket(bucketExpiry)
	err := tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("records: decode %q: %w", bytes.Clone(k), err)
		}
		return xb.Put(expiryKey(r), nil)
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(metaExpiryIndex, []byte{1})
}

// ForEach calls fn for every record in local-id order, stopping at the first
// error fn returns. fn must not call back into the store.
func (s *Store) ForEach(fn func(Record) error) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("records: decode %q: %w", bytes.Clone(k), err)
			}
			return fn(r)
		})
	})
}

// Count returns the number of records held (objected included).
func (s *Store) Count() (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketRecords).Stats().KeyN
		return nil
	})
	return n, err
}

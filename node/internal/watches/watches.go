package watches

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/signpost-federation/signpost/node/port"
)

// Sentinel errors callers branch on. ErrNotFound and ErrLimit are the
// port's, so that the core branches on them without importing this
// package.
var (
	ErrNotFound = port.ErrWatchNotFound
	ErrLimit    = port.ErrWatchLimit
	ErrKeys     = port.ErrWatchKeys
	ErrInvalid  = errors.New("watches: invalid watch or notice")
	ErrClosed   = errors.New("watches: store closed")
)

// Bounds on what the store keeps.
const (
	MaxKeys     = 64      // lookup keys of one watch, whatever the caller asks
	MaxNameLen  = 200     // a user name
	MaxPurpose  = 64      // a purpose name
	MaxEntryLen = 8 << 10 // a sealed entry in a notice
)

// Notice types.
const (
	Involved  = "involved"
	Withdrawn = "withdrawn"
)

// NewID returns a fresh random watch id (22 characters of base64url).
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of an id from [NewID].
func ValidID(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 16 && base64.RawURLEncoding.EncodeToString(b) == s
}

func validText(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) || strings.TrimSpace(s) == "" {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
			return false
		}
	}
	return true
}

// record is a watch as stored: port.StoredWatch plus the next notice
// sequence number.
type record struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Purpose string    `json:"purpose"`
	Keys    []string  `json:"keys"` // base64url, 16 bytes each
	Started time.Time `json:"started"`
	Expires time.Time `json:"expires"`
	NextSeq uint64    `json:"nextSeq"`
}

type noticeRecord struct {
	WatchID   string    `json:"watchId"`
	Seq       uint64    `json:"seq"`
	Type      string    `json:"type"`
	LookupKey string    `json:"lookupKey"`
	Entry     []byte    `json:"entry,omitempty"`
	At        time.Time `json:"at"`
	Seen      bool      `json:"seen,omitempty"`
}

func bad(what string) error { return fmt.Errorf("%w: %s", ErrInvalid, what) }

// Validate checks a watch's shape.
func Validate(w port.StoredWatch) error {
	switch {
	case !ValidID(w.ID):
		return bad("id")
	case !validText(w.User, MaxNameLen):
		return bad("user")
	case !validText(w.Purpose, MaxPurpose):
		return bad("purpose")
	case len(w.Keys) == 0 || len(w.Keys) > MaxKeys:
		return bad(fmt.Sprintf("a watch names 1 to %d lookup keys", MaxKeys))
	case w.Started.IsZero() || !w.Expires.After(w.Started):
		return bad("times")
	}
	seen := map[[16]byte]bool{}
	for _, k := range w.Keys {
		if seen[k] {
			return bad("a lookup key twice")
		}
		seen[k] = true
	}
	return nil
}

// ValidateNotice checks a notice's shape.
func ValidateNotice(n port.WatchNotice) error {
	switch {
	case !ValidID(n.WatchID):
		return bad("watch id")
	case n.Type != Involved && n.Type != Withdrawn:
		return bad("type")
	case len(n.Entry) > MaxEntryLen:
		return bad("entry too long")
	case n.At.IsZero():
		return bad("time")
	}
	return nil
}

func toRecord(w port.StoredWatch, next uint64) record {
	r := record{ID: w.ID, User: w.User, Purpose: w.Purpose, Started: w.Started.UTC(), Expires: w.Expires.UTC(), NextSeq: next}
	for _, k := range w.Keys {
		r.Keys = append(r.Keys, base64.RawURLEncoding.EncodeToString(k[:]))
	}
	return r
}

func decodeKey(s string) ([16]byte, bool) {
	var k [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 || base64.RawURLEncoding.EncodeToString(b) != s {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

func strict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: decode: %v", ErrInvalid, err)
	}
	if dec.More() {
		return bad("trailing data")
	}
	return nil
}

// DecodeWatch reads a stored watch, refusing one that does not validate;
// it returns the watch and its next notice sequence number.
func DecodeWatch(data []byte) (port.StoredWatch, uint64, error) {
	var r record
	if err := strict(data, &r); err != nil {
		return port.StoredWatch{}, 0, err
	}
	w := port.StoredWatch{ID: r.ID, User: r.User, Purpose: r.Purpose, Started: r.Started, Expires: r.Expires}
	for _, s := range r.Keys {
		k, ok := decodeKey(s)
		if !ok {
			return port.StoredWatch{}, 0, bad("lookup key")
		}
		w.Keys = append(w.Keys, k)
	}
	if err := Validate(w); err != nil {
		return port.StoredWatch{}, 0, err
	}
	if r.NextSeq == 0 {
		return port.StoredWatch{}, 0, bad("sequence")
	}
	return w, r.NextSeq, nil
}

// DecodeNotice reads a stored notice, refusing one that does not validate.
func DecodeNotice(data []byte) (port.WatchNotice, error) {
	var r noticeRecord
	if err := strict(data, &r); err != nil {
		return port.WatchNotice{}, err
	}
	k, ok := decodeKey(r.LookupKey)
	if !ok {
		return port.WatchNotice{}, bad("lookup key")
	}
	n := port.WatchNotice{WatchID: r.WatchID, Seq: r.Seq, Type: r.Type, LookupKey: k, Entry: r.Entry, At: r.At, Seen: r.Seen}
	if err := ValidateNotice(n); err != nil {
		return port.WatchNotice{}, err
	}
	if n.Seq == 0 {
		return port.WatchNotice{}, bad("sequence")
	}
	return n, nil
}

var (
	watchBucket  = []byte("watches")
	noticeBucket = []byte("notices")
)

// Store keeps stored watches and their notices in a bbolt file. Safe for
// concurrent use.
type Store struct {
	db     *bolt.DB
	closed atomic.Bool
}

var _ port.WatchStore = (*Store)(nil)

// Open opens (creating if needed) the store at path (mode 0600).
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("watches: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{watchBucket, noticeBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("watches: init %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store; later calls fail with ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	return s.db.Close()
}

func (s *Store) update(fn func(ws, ns *bolt.Bucket) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(watchBucket), tx.Bucket(noticeBucket)) })
}

func (s *Store) view(fn func(ws, ns *bolt.Bucket) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(watchBucket), tx.Bucket(noticeBucket)) })
}

func put(ws *bolt.Bucket, w port.StoredWatch, next uint64) error {
	if err := Validate(w); err != nil {
		return err
	}
	data, err := json.Marshal(toRecord(w, next))
	if err != nil {
		return fmt.Errorf("watches: encode: %w", err)
	}
	return ws.Put([]byte(w.ID), data)
}

func get(ws *bolt.Bucket, id string) (port.StoredWatch, uint64, error) {
	data := ws.Get([]byte(id))
	if data == nil {
		return port.StoredWatch{}, 0, ErrNotFound
	}
	w, next, err := DecodeWatch(data)
	if err != nil {
		return port.StoredWatch{}, 0, fmt.Errorf("watches: watch %s: %w", id, err)
	}
	return w, next, nil
}

func each(ws *bolt.Bucket, fn func(port.StoredWatch) error) error {
	return ws.ForEach(func(k, v []byte) error {
		w, _, err := DecodeWatch(v)
		if err != nil {
			return fmt.Errorf("watches: watch %s: %w", k, err)
		}
		return fn(w)
	})
}

// noticeKey is the notice's key: the watch id, "/", the sequence number
// (8 bytes, big-endian, so that a watch's notices sort oldest first).
func noticeKey(id string, seq uint64) []byte {
	k := append([]byte(id), '/')
	return binary.BigEndian.AppendUint64(k, seq)
}

// noticeKeys returns the keys of id's notices, oldest first.
func noticeKeys(ns *bolt.Bucket, id string) [][]byte {
	prefix := append([]byte(id), '/')
	var out [][]byte
	c := ns.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, slices.Clone(k))
	}
	return out
}

func deleteWatch(ws, ns *bolt.Bucket, id string) error {
	for _, k := range noticeKeys(ns, id) {
		if err := ns.Delete(k); err != nil {
			return err
		}
	}
	return ws.Delete([]byte(id))
}

// Create implements port.WatchStore.
func (s *Store) Create(w port.StoredWatch, maxPerUser, maxKeys int) (port.StoredWatch, bool, error) {
	maxKeys = min(maxKeys, MaxKeys)
	if err := Validate(w); err != nil {
		return port.StoredWatch{}, false, err
	}
	if len(w.Keys) > maxKeys {
		return port.StoredWatch{}, false, fmt.Errorf("%w: at most %d", ErrKeys, maxKeys)
	}
	var out port.StoredWatch
	created := false
	err := s.update(func(ws, ns *bolt.Bucket) error {
		if ws.Get([]byte(w.ID)) != nil {
			return bad("id exists")
		}
		mine := 0
		var same *port.StoredWatch
		var sameNext uint64
		err := ws.ForEach(func(k, v []byte) error {
			o, next, err := DecodeWatch(v)
			if err != nil {
				return fmt.Errorf("watches: watch %s: %w", k, err)
			}
			if o.User != w.User {
				return nil
			}
			mine++
			if same == nil && o.Purpose == w.Purpose && slices.ContainsFunc(w.Keys, func(k [16]byte) bool { return slices.Contains(o.Keys, k) }) {
				same, sameNext = &o, next
			}
			return nil
		})
		if err != nil {
			return err
		}
		if same != nil {
			for _, k := range w.Keys {
				if !slices.Contains(same.Keys, k) {
					same.Keys = append(same.Keys, k)
				}
			}
			if len(same.Keys) > maxKeys {
				return fmt.Errorf("%w: at most %d", ErrKeys, maxKeys)
			}
			if w.Expires.After(same.Expires) {
				same.Expires = w.Expires
			}
			out = *same
			return put(ws, *same, sameNext)
		}
		if mine >= maxPerUser {
			return fmt.Errorf("%w: at most %d watches", ErrLimit, maxPerUser)
		}
		out, created = w, true
		return put(ws, w, 1)
	})
	if err != nil {
		return port.StoredWatch{}, false, err
	}
	return out, created, nil
}

// Get implements port.WatchStore.
func (s *Store) Get(id string) (port.StoredWatch, error) {
	var w port.StoredWatch
	err := s.view(func(ws, _ *bolt.Bucket) error {
		var err error
		w, _, err = get(ws, id)
		return err
	})
	return w, err
}

func sortWatches(out []port.StoredWatch) {
	slices.SortFunc(out, func(a, b port.StoredWatch) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// List implements port.WatchStore.
func (s *Store) List(user string) ([]port.StoredWatch, error) {
	var out []port.StoredWatch
	err := s.view(func(ws, _ *bolt.Bucket) error {
		return each(ws, func(w port.StoredWatch) error {
			if w.User == user {
				out = append(out, w)
			}
			return nil
		})
	})
	sortWatches(out)
	return out, err
}

// All implements port.WatchStore.
func (s *Store) All() ([]port.StoredWatch, error) {
	var out []port.StoredWatch
	err := s.view(func(ws, _ *bolt.Bucket) error {
		return each(ws, func(w port.StoredWatch) error {
			out = append(out, w)
			return nil
		})
	})
	sortWatches(out)
	return out, err
}

// Delete implements port.WatchStore.
func (s *Store) Delete(id string) (port.StoredWatch, error) {
	var w port.StoredWatch
	err := s.update(func(ws, ns *bolt.Bucket) error {
		var err error
		if w, _, err = get(ws, id); err != nil {
			return err
		}
		return deleteWatch(ws, ns, id)
	})
	return w, err
}

// AddNotice implements port.WatchStore.
func (s *Store) AddNotice(n port.WatchNotice, keep int) (port.WatchNotice, error) {
	n.Seq, n.Seen = 0, false
	n.At = n.At.UTC()
	if err := ValidateNotice(n); err != nil {
		return port.WatchNotice{}, err
	}
	err := s.update(func(ws, ns *bolt.Bucket) error {
		w, next, err := get(ws, n.WatchID)
		if err != nil {
			return err
		}
		n.Seq = next
		data, err := json.Marshal(noticeRecord{WatchID: n.WatchID, Seq: n.Seq, Type: n.Type,
			LookupKey: base64.RawURLEncoding.EncodeToString(n.LookupKey[:]), Entry: n.Entry, At: n.At})
		if err != nil {
			return fmt.Errorf("watches: encode: %w", err)
		}
		if err := ns.Put(noticeKey(n.WatchID, n.Seq), data); err != nil {
			return err
		}
		keys := noticeKeys(ns, n.WatchID)
		for len(keys) > max(keep, 1) {
			if err := ns.Delete(keys[0]); err != nil {
				return err
			}
			keys = keys[1:]
		}
		return put(ws, w, next+1)
	})
	if err != nil {
		return port.WatchNotice{}, err
	}
	return n, nil
}

// Notices implements port.WatchStore.
func (s *Store) Notices(watchID string) ([]port.WatchNotice, error) {
	var out []port.WatchNotice
	err := s.view(func(_, ns *bolt.Bucket) error {
		for _, k := range noticeKeys(ns, watchID) {
			n, err := DecodeNotice(ns.Get(k))
			if err != nil {
				return fmt.Errorf("watches: notice of %s: %w", watchID, err)
			}
			out = append(out, n)
		}
		return nil
	})
	return out, err
}

// MarkSeen implements port.WatchStore.
func (s *Store) MarkSeen(watchID string, upTo uint64) error {
	return s.update(func(ws, ns *bolt.Bucket) error {
		if _, _, err := get(ws, watchID); err != nil {
			return err
		}
		for _, k := range noticeKeys(ns, watchID) {
			n, err := DecodeNotice(ns.Get(k))
			if err != nil {
				return fmt.Errorf("watches: notice of %s: %w", watchID, err)
			}
			if n.Seq > upTo || n.Seen {
				continue
			}
			var r noticeRecord
			if err := json.Unmarshal(ns.Get(k), &r); err != nil {
				return fmt.Errorf("watches: notice of %s: %w", watchID, err)
			}
			r.Seen = true
			data, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("watches: encode: %w", err)
			}
			if err := ns.Put(k, data); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteExpired implements port.WatchStore.
func (s *Store) DeleteExpired(now time.Time, limit int) ([]port.StoredWatch, error) {
	var gone []port.StoredWatch
	err := s.update(func(ws, ns *bolt.Bucket) error {
		err := each(ws, func(w port.StoredWatch) error {
			if len(gone) < limit && !now.Before(w.Expires) {
				gone = append(gone, w)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, w := range gone {
			if err := deleteWatch(ws, ns, w.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return gone, nil
}

package contacts

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
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
)

// Sentinel errors callers branch on.
var (
	ErrNotFound = errors.New("contacts: no such contact request")
	ErrExists   = errors.New("contacts: contact request exists")
	ErrDecided  = errors.New("contacts: contact request already answered or declined")
	ErrInvalid  = errors.New("contacts: invalid contact request")
	ErrClosed   = errors.New("contacts: store closed")
)

// Side says whose request it is at this node.
type Side string

// The sides.
const (
	Sent     Side = "sent"     // this node's practitioner asked another agency
	Received Side = "received" // another agency asked this node
	Relayed  Side = "relayed"  // this node, a broker, relayed a request to a shielded holder
)

// State is where a request stands.
type State string

// The states.
const (
	New      State = "new"
	Answered State = "answered"
	Declined State = "declined"
)

// CanMove reports whether a request may move from one state to another:
// only from new, only to answered or declined.
func CanMove(from, to State) bool {
	return from == New && (to == Answered || to == Declined)
}

// Bounds on free text, in bytes.
const (
	MaxMessageLen = 500 // the requester's message
	MaxContactLen = 300 // a named contact: name, role, phone or email
	MaxReasonLen  = 500 // why the holder declined
	MaxNameLen    = 200 // a practitioner's or agency's name, a decider
	MaxIDLen      = 64  // a node id
)

// ValidText reports whether s is free text the store keeps: at most max
// bytes of valid UTF-8 with no control or formatting character (no line
// breaks, no bidirectional overrides), and not only spaces when required.
// It is shown on pages at both agencies and in audit answers.
func ValidText(s string, max int, required bool) bool {
	if len(s) > max || !utf8.ValidString(s) || required && strings.TrimSpace(s) == "" {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
			return false
		}
	}
	return true
}

// NewID returns a fresh random request id (22 characters of base64url).
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

// Request is one contact request as this node keeps it.
type Request struct {
	// ID is this node's id for the request ([NewID]).
	ID   string `json:"id"`
	Side Side   `json:"side"`
	// Peer is the other node: the holder on the sent side, the requester
	// on the received side; PeerAgency its agency's name then.
	Peer       string `json:"peer"`
	PeerAgency string `json:"peerAgency,omitempty"`
	// RemoteID, on the received and relayed sides, is the requester's id
	// for it (on the holder of a request through a broker, the broker's).
	RemoteID string `json:"remoteId,omitempty"`
	// Requests through a broker (shielded holders). Sent side: Brokered
	// says Peer is the broker, and Named, NamedAgency name the holder once
	// it consented. Received side (the shielded holder, whose Peer is the
	// broker): Origin and OriginAgency are the requesting node. Relayed
	// side (the broker, whose Peer is the requester): Holder is the
	// shielded node it was relayed to, and nothing about the person is
	// kept (no Lookup, no LocalID).
	Brokered     bool   `json:"brokered,omitempty"`
	Named        string `json:"named,omitempty"`
	NamedAgency  string `json:"namedAgency,omitempty"`
	Origin       string `json:"origin,omitempty"`
	OriginAgency string `json:"originAgency,omitempty"`
	Holder       string `json:"holder,omitempty"`
	// Consent (answered through a broker): the holder agreed to be named.
	Consent bool `json:"consent,omitempty"`
	// Requester is the practitioner who asked (at the requesting node).
	Requester string `json:"requester"`
	Purpose   string `json:"purpose"`
	// Lookup is the subject's lookup key for Purpose: never the number.
	Lookup [16]byte `json:"lookup"`
	// LocalID, on the received side, is the holder's record for the person.
	LocalID string `json:"localId,omitempty"`
	Message string `json:"message,omitempty"`
	State   State  `json:"state"`
	// Contact (answered) and Reason (declined) are the holder's decision;
	// DecidedBy who took it (a staff name, or the holder's policy).
	Contact   string    `json:"contact,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	DecidedBy string    `json:"decidedBy,omitempty"`
	Created   time.Time `json:"created"`
	// Updated is the last change; retention counts from it.
	Updated time.Time `json:"updated"`
	// Delivery of a holder's decision to the requester (received side):
	// Undelivered until the requester acknowledged it; Attempts and
	// NextAttempt pace the retries; GaveUp when the requester refused it
	// for good (it no longer knows the request).
	Undelivered bool      `json:"undelivered,omitempty"`
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	GaveUp      bool      `json:"gaveUp,omitempty"`
}

// Validate checks a request's shape and its state's fields.
func (r Request) Validate() error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrInvalid, what) }
	switch {
	case !ValidID(r.ID):
		return bad("id")
	case r.Side != Sent && r.Side != Received && r.Side != Relayed:
		return bad("side")
	case !ValidText(r.Peer, MaxIDLen, true) || !ValidText(r.PeerAgency, MaxNameLen, false):
		return bad("peer")
	case r.Side != Sent && !ValidID(r.RemoteID), r.Side == Sent && r.RemoteID != "":
		return bad("remote id")
	case r.Side != Sent && (r.Brokered || r.Named != "" || r.NamedAgency != ""),
		r.Side == Sent && (!r.Brokered && r.Named != "" || !ValidText(r.Named, MaxIDLen, false) || !ValidText(r.NamedAgency, MaxNameLen, false) || r.Named == "" && r.NamedAgency != ""):
		return bad("named holder")
	case r.Side != Received && (r.Origin != "" || r.OriginAgency != ""),
		r.Side == Received && (!ValidText(r.Origin, MaxIDLen, false) || !ValidText(r.OriginAgency, MaxNameLen, false) || r.Origin == "" && r.OriginAgency != ""):
		return bad("origin")
	case r.Side == Relayed && (!ValidText(r.Holder, MaxIDLen, true) || r.Lookup != [16]byte{} || r.LocalID != ""),
		r.Side != Relayed && r.Holder != "":
		return bad("relayed holder")
	case r.Consent && (r.State != Answered || r.Side == Sent && !r.Brokered || r.Side == Received && r.Origin == ""),
		r.Named != "" && !r.Consent:
		return bad("consent")
	case !ValidText(r.Requester, MaxNameLen, true):
		return bad("requester")
	case !ValidText(r.Purpose, MaxIDLen, true):
		return bad("purpose")
	case !ValidText(r.LocalID, MaxNameLen, r.Side == Received):
		return bad("local id")
	case !ValidText(r.Message, MaxMessageLen, false):
		return bad("message")
	case !ValidText(r.DecidedBy, MaxNameLen, false):
		return bad("decided by")
	case r.Created.IsZero() || r.Updated.Before(r.Created):
		return bad("times")
	}
	switch r.State {
	case New:
		if r.Contact != "" || r.Reason != "" {
			return bad("a new request carries no decision")
		}
	case Answered:
		if !ValidText(r.Contact, MaxContactLen, true) || r.Reason != "" {
			return bad("an answer names a contact (at most 300 bytes, no line breaks)")
		}
	case Declined:
		if !ValidText(r.Reason, MaxReasonLen, true) || r.Contact != "" {
			return bad("a decline gives a reason (at most 500 bytes, no line breaks)")
		}
	default:
		return bad("state")
	}
	return nil
}

// Decision is what the holder decided: State Answered with Contact, or
// Declined with Reason; By names who decided. Through a broker, Consent
// says the holder agreed to be named, and on the sent side Named and
// NamedAgency are then the holder.
type Decision struct {
	State       State
	Contact     string
	Reason      string
	By          string
	Consent     bool
	Named       string
	NamedAgency string
}

// Same reports whether r already carries decision d (a repeated delivery).
func (r Request) Same(d Decision) bool {
	return r.State == d.State && r.Contact == d.Contact && r.Reason == d.Reason && r.Consent == d.Consent && r.Named == d.Named
}

var bucket = []byte("requests")

// Store keeps contact requests in a bbolt file. Safe for concurrent use.
type Store struct {
	db     *bolt.DB
	closed atomic.Bool
}

// Open opens (creating if needed) the store at path (mode 0600).
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("contacts: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("contacts: init %s: %w", path, err)
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

func (s *Store) update(fn func(b *bolt.Bucket) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucket)) })
}

func (s *Store) view(fn func(b *bolt.Bucket) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucket)) })
}

// Decode reads a stored request, refusing one that does not validate.
func Decode(data []byte) (Request, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("%w: decode: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Request{}, fmt.Errorf("%w: trailing data", ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return Request{}, err
	}
	return r, nil
}

func put(b *bolt.Bucket, r Request) error {
	if err := r.Validate(); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("contacts: encode: %w", err)
	}
	return b.Put([]byte(r.ID), data)
}

func get(b *bolt.Bucket, id string) (Request, error) {
	data := b.Get([]byte(id))
	if data == nil {
		return Request{}, ErrNotFound
	}
	r, err := Decode(data)
	if err != nil {
		return Request{}, fmt.Errorf("contacts: request %s: %w", id, err)
	}
	return r, nil
}

// Create stores a new request (committed when it returns). A request may
// be created already decided (a holder answering by its policy at once,
// in the reply that carries the request): its delivery fields are kept as
// given.
func (s *Store) Create(r Request) error {
	return s.update(func(b *bolt.Bucket) error {
		if b.Get([]byte(r.ID)) != nil {
			return ErrExists
		}
		return put(b, r)
	})
}

// Get returns the request with id.
func (s *Store) Get(id string) (Request, error) {
	var r Request
	err := s.view(func(b *bolt.Bucket) error {
		var err error
		r, err = get(b, id)
		return err
	})
	return r, err
}

// Delete removes a request (a sent request whose holder never took it).
func (s *Store) Delete(id string) error {
	return s.update(func(b *bolt.Bucket) error {
		if b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(id))
	})
}

// Decide moves the request id on side from new to d's state, at now, and
// returns it as stored. A request on the other side is ErrNotFound; one
// already decided is ErrDecided, returned with the request as it stands
// (so that a repeated delivery of the same decision can be told apart).
// On the received and relayed sides the decision is marked undelivered,
// due at once (to the requester, or for a broker, on to the requester).
func (s *Store) Decide(id string, side Side, d Decision, now time.Time) (Request, error) {
	var out Request
	err := s.update(func(b *bolt.Bucket) error {
		r, err := get(b, id)
		if err != nil {
			return err
		}
		if r.Side != side {
			return ErrNotFound
		}
		if !CanMove(r.State, d.State) {
			out = r
			if r.State != New {
				return ErrDecided
			}
			return fmt.Errorf("%w: a request moves only to answered or declined", ErrInvalid)
		}
		r.State, r.Contact, r.Reason, r.DecidedBy = d.State, d.Contact, d.Reason, d.By
		r.Consent, r.Named, r.NamedAgency = d.Consent, d.Named, d.NamedAgency
		r.Updated = now
		if side != Sent {
			r.Undelivered, r.Attempts, r.NextAttempt = true, 0, now
		}
		if err := put(b, r); err != nil {
			return err
		}
		out = r
		return nil
	})
	return out, err
}

// Delivered records the outcome of one delivery attempt of a holder's
// decision: delivered, given up (the requester refused it for good), or
// to be retried at next.
func (s *Store) Delivered(id string, delivered, gaveUp bool, next time.Time) error {
	return s.update(func(b *bolt.Bucket) error {
		r, err := get(b, id)
		if err != nil {
			return err
		}
		switch {
		case delivered:
			r.Undelivered, r.NextAttempt = false, time.Time{}
		case gaveUp:
			r.Undelivered, r.GaveUp, r.NextAttempt = false, true, time.Time{}
		default:
			r.Attempts++
			r.NextAttempt = next
		}
		return put(b, r)
	})
}

// List returns the requests on side for which keep (nil: all) is true,
// newest first, at most limit (0: all).
func (s *Store) List(side Side, keep func(Request) bool, limit int) ([]Request, error) {
	var out []Request
	err := s.view(func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			r, err := Decode(v)
			if err != nil {
				return fmt.Errorf("contacts: request %s: %w", k, err)
			}
			if r.Side == side && (keep == nil || keep(r)) {
				out = append(out, r)
			}
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Request) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

// Counts returns how many requests the store holds by side and state, and
// how many decisions are still to be delivered (the node's gauges).
func (s *Store) Counts() (map[Side]map[State]int, int, error) {
	out := map[Side]map[State]int{Sent: {}, Received: {}, Relayed: {}}
	undelivered := 0
	err := s.view(func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			r, err := Decode(v)
			if err != nil {
				return fmt.Errorf("contacts: request %s: %w", k, err)
			}
			out[r.Side][r.State]++
			if r.Undelivered {
				undelivered++
			}
			return nil
		})
	})
	return out, undelivered, err
}

// Due returns the received and relayed requests whose decision is still
// to be delivered and whose next attempt is at or before now.
func (s *Store) Due(now time.Time) ([]Request, error) {
	due := func(r Request) bool { return r.Undelivered && !r.NextAttempt.After(now) }
	rec, err := s.List(Received, due, 0)
	if err != nil {
		return nil, err
	}
	rel, err := s.List(Relayed, due, 0)
	return append(rec, rel...), err
}

// DeleteStale deletes up to max requests last changed before cutoff and
// returns them.
func (s *Store) DeleteStale(cutoff time.Time, max int) ([]Request, error) {
	var gone []Request
	err := s.update(func(b *bolt.Bucket) error {
		var ids [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if len(gone) >= max {
				return nil
			}
			r, err := Decode(v)
			if err != nil {
				return fmt.Errorf("contacts: request %s: %w", k, err)
			}
			if r.Updated.Before(cutoff) {
				gone = append(gone, r)
				ids = append(ids, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range ids {
			if err := b.Delete(k); err != nil {
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

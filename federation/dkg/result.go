package dkg

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/math/polynomial"

	"github.com/signpost-federation/signpost/wasm/purpose"
)

const (
	keySetMagic = "SPKS1"
	shareMagic  = "SPKH1"
	// MaxKeySetSize bounds an encoded KeySet.
	MaxKeySetSize = len(keySetMagic) + 32 + 1 + purpose.MaxLen + 4 + 2 + 2 +
		MaxParticipants*(2+1+maxNodeIDLen+elementSize) + elementSize
	// MaxShareSize bounds an encoded Share.
	MaxShareSize = len(shareMagic) + 32 + 1 + purpose.MaxLen + 4 + 1 + maxNodeIDLen + 2 + scalarSize
)

// ErrInvalidKeySet is wrapped for every key set the package refuses.
var ErrInvalidKeySet = errors.New("dkg: invalid key set")

// KeySet is the public outcome of a DKG or reshare: everything a key
// record states, and nothing secret.
type KeySet struct {
	// Session is the session that made it (a holder's share names it too).
	Session SessionID
	Purpose string
	Epoch   uint32
	T       int
	// Issuers are the holders, sorted by index, with their public shares.
	Issuers []PublicShare
	// GroupKey is K = k·G.
	GroupKey []byte
}

// Share is one holder's share of a key: SECRET. It is what the holder's
// share file stores and what its issuer evaluates with; nothing else ever
// sees it.
type Share struct {
	Session SessionID
	Purpose string
	Epoch   uint32
	NodeID  string
	Index   uint16
	// Value is the 32-byte scalar k_i.
	Value []byte
}

// Result is a finished session's outcome for one participant.
type Result struct {
	KeySet
	// Share is this participant's share, nil if it holds none (a holder
	// that leaves in a reshare, or a disqualified participant).
	Share *Share
}

// Exclusion names a participant left out of a session and why.
type Exclusion struct {
	NodeID string
	Reason string
}

// Status is a session's progress, for operators: it names nodes, never a
// secret.
type Status struct {
	Session SessionID
	Purpose string
	Epoch   uint32
	T, N    int
	Reshare bool
	Phase   Phase
	// Deadline ends the current phase at the latest (zero once final).
	Deadline time.Time
	// Answered and Waiting list the participants whose message for the
	// current phase has, and has not, arrived (this participant included).
	Answered, Waiting []string
	// Excluded lists the participants left out so far, with the reason.
	Excluded []Exclusion
	// Holders lists the holders of the finished key (PhaseDone).
	Holders []string
	// Unconfirmed lists participants that did not confirm the finished key.
	Unconfirmed []string
	// Reason says why the session aborted (PhaseAborted).
	Reason string
}

// Status reports the session's progress.
func (s *Session) Status() Status {
	st := Status{
		Session: s.id, Purpose: s.cfg.Purpose, Epoch: s.cfg.Epoch, T: s.cfg.T, N: len(s.cfg.Participants),
		Reshare: s.cfg.Reshare != nil, Phase: s.phase, Deadline: s.Deadline(), Reason: s.reason,
	}
	if s.phase < PhaseDone {
		in, missing := s.expected()
		for _, n := range in {
			st.Answered = append(st.Answered, n.id)
		}
		for _, n := range missing {
			st.Waiting = append(st.Waiting, n.id)
		}
	}
	for _, n := range s.nodes {
		if n.out != "" {
			st.Excluded = append(st.Excluded, Exclusion{NodeID: n.id, Reason: n.out})
		}
	}
	if s.phase == PhaseDone {
		for _, n := range s.holders {
			st.Holders = append(st.Holders, n.id)
		}
		for _, n := range s.unconfirmed() {
			st.Unconfirmed = append(st.Unconfirmed, n.id)
		}
	}
	return st
}

// Result returns the finished session's key set and this participant's
// share (a copy: Close does not erase it). It wraps ErrAborted with the
// reason, or returns ErrNotFinished.
func (s *Session) Result() (*Result, error) {
	switch s.phase {
	case PhaseAborted:
		return nil, fmt.Errorf("%w: %s", ErrAborted, s.reason)
	case PhaseDone:
	default:
		return nil, fmt.Errorf("%w: in phase %s", ErrNotFinished, s.phase)
	}
	r := &Result{KeySet: KeySet{
		Session: s.id, Purpose: s.cfg.Purpose, Epoch: s.cfg.Epoch, T: s.cfg.T, GroupKey: elementBytes(s.groupKey),
	}}
	for _, n := range s.holders {
		r.Issuers = append(r.Issuers, PublicShare{NodeID: n.id, Index: n.recvIndex, Key: elementBytes(s.pub[n])})
	}
	if s.share != nil && slices.Contains(s.holders, s.self) {
		r.Share = &Share{
			Session: s.id, Purpose: s.cfg.Purpose, Epoch: s.cfg.Epoch,
			NodeID: s.self.id, Index: s.self.recvIndex, Value: scalarBytes(s.share),
		}
	}
	return r, nil
}

// Validate checks a key set: purpose rule, 1 ≤ t ≤ n ≤ MaxParticipants,
// unique node ids and non-zero indices, valid non-identity elements, and
// that the public shares and the group key are consistent — they lie on
// one polynomial of degree t−1 "in the exponent", so any t public shares
// interpolate to the others and, at 0, to the group key.
func (ks *KeySet) Validate() error {
	var errs []error
	if err := purpose.Validate(ks.Purpose); err != nil {
		errs = append(errs, fmt.Errorf("purpose %q: %w", ks.Purpose, err))
	}
	errs = append(errs, checkParticipants("issuer", len(ks.Issuers), func(i int) (string, uint16) {
		return ks.Issuers[i].NodeID, ks.Issuers[i].Index
	})...)
	if ks.T < 1 || ks.T > len(ks.Issuers) {
		errs = append(errs, fmt.Errorf("t = %d must be between 1 and n = %d", ks.T, len(ks.Issuers)))
	}
	if !slices.IsSortedFunc(ks.Issuers, func(a, b PublicShare) int { return cmp.Compare(a.Index, b.Index) }) {
		errs = append(errs, errors.New("issuers are not sorted by index"))
	}
	pubs := make([]elem, len(ks.Issuers))
	for i, is := range ks.Issuers {
		e, err := decodeElement(is.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("issuer %q: public share: %w", is.NodeID, err))
		}
		pubs[i] = e
	}
	K, err := decodeElement(ks.GroupKey)
	if err != nil {
		errs = append(errs, fmt.Errorf("group key: %w", err))
	}
	if len(errs) == 0 {
		if err := ks.checkConsistent(pubs, K); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidKeySet, errors.Join(errs...))
	}
	return nil
}

// checkConsistent interpolates the first t public shares in the exponent
// at 0 and at every other issuer's index.
func (ks *KeySet) checkConsistent(pubs []elem, K elem) error {
	t := ks.T
	xs := make([]group.Scalar, t)
	for i := range t {
		xs[i] = idScalar(ks.Issuers[i].Index)
	}
	at := func(x group.Scalar) elem {
		sum := g.Identity()
		for i := range t {
			sum.Add(sum, g.NewElement().Mul(pubs[i], polynomial.LagrangeBase(uint(i), xs, x)))
		}
		return sum
	}
	if !at(g.NewScalar()).IsEqual(K) {
		return errors.New("the public shares do not interpolate to the group key")
	}
	for i := t; i < len(pubs); i++ {
		if !at(idScalar(ks.Issuers[i].Index)).IsEqual(pubs[i]) {
			return fmt.Errorf("issuer %q's public share is not on the key's polynomial", ks.Issuers[i].NodeID)
		}
	}
	return nil
}

// Encode returns the canonical encoding: "SPKS1", the 32-byte session id,
// str8 purpose, u32 epoch, u16 t, u16 n, per issuer u16 index, str8 node id
// and 32-byte public share, then the 32-byte group key.
func (ks *KeySet) Encode() []byte {
	b := make([]byte, 0, 64+len(ks.Issuers)*48)
	b = append(b, keySetMagic...)
	b = append(b, ks.Session[:]...)
	b = appendStr8(b, ks.Purpose)
	b = binary.BigEndian.AppendUint32(b, ks.Epoch)
	b = binary.BigEndian.AppendUint16(b, uint16(ks.T))
	b = binary.BigEndian.AppendUint16(b, uint16(len(ks.Issuers)))
	for _, is := range ks.Issuers {
		b = binary.BigEndian.AppendUint16(b, is.Index)
		b = appendStr8(b, is.NodeID)
		b = append(b, is.Key...)
	}
	return append(b, ks.GroupKey...)
}

// DecodeKeySet parses and validates a canonical key set.
func DecodeKeySet(b []byte) (*KeySet, error) {
	if len(b) > MaxKeySetSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrInvalidKeySet, len(b), MaxKeySetSize)
	}
	r := reader{b: b}
	if string(r.next(len(keySetMagic))) != keySetMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrInvalidKeySet)
	}
	ks := &KeySet{}
	copy(ks.Session[:], r.next(32))
	ks.Purpose = r.str8()
	ks.Epoch = r.u32()
	ks.T = int(r.u16())
	n := int(r.u16())
	if n > MaxParticipants {
		return nil, fmt.Errorf("%w: %d issuers, max %d", ErrInvalidKeySet, n, MaxParticipants)
	}
	for range n {
		if r.err != nil {
			break
		}
		x := r.u16()
		id := r.str8()
		ks.Issuers = append(ks.Issuers, PublicShare{Index: x, NodeID: id, Key: bytes.Clone(r.next(elementSize))})
	}
	ks.GroupKey = bytes.Clone(r.next(elementSize))
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrInvalidKeySet, err)
	}
	if err := ks.Validate(); err != nil {
		return nil, err
	}
	if !bytes.Equal(ks.Encode(), b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrInvalidKeySet)
	}
	return ks, nil
}

func (s *Share) scalar() (group.Scalar, error) {
	v := g.NewScalar()
	if err := v.UnmarshalBinary(s.Value); err != nil {
		return nil, errors.New("dkg: share: invalid scalar")
	}
	return v, nil
}

// PublicKey returns K_i = k_i·G for the share.
func (s *Share) PublicKey() ([]byte, error) {
	v, err := s.scalar()
	if err != nil {
		return nil, err
	}
	return elementBytes(g.NewElement().MulGen(v)), nil
}

// Erase overwrites the share's value with zeros. An old holder calls it (and
// removes its share file) once the record of a reshare that moved its key
// elsewhere is in force.
func (s *Share) Erase() { clear(s.Value) }

// Encode returns the canonical encoding (SECRET: it contains the share):
// "SPKH1", 32-byte session id, str8 purpose, u32 epoch, str8 node id, u16
// index, 32-byte scalar.
func (s *Share) Encode() []byte {
	b := make([]byte, 0, MaxShareSize)
	b = append(b, shareMagic...)
	b = append(b, s.Session[:]...)
	b = appendStr8(b, s.Purpose)
	b = binary.BigEndian.AppendUint32(b, s.Epoch)
	b = appendStr8(b, s.NodeID)
	b = binary.BigEndian.AppendUint16(b, s.Index)
	return append(b, s.Value...)
}

// DecodeShare parses and checks a canonical share.
func DecodeShare(b []byte) (*Share, error) {
	if len(b) > MaxShareSize {
		return nil, fmt.Errorf("dkg: share of %d bytes exceeds %d", len(b), MaxShareSize)
	}
	r := reader{b: b}
	if string(r.next(len(shareMagic))) != shareMagic {
		return nil, errors.New("dkg: not a share (bad magic)")
	}
	s := &Share{}
	copy(s.Session[:], r.next(32))
	s.Purpose = r.str8()
	s.Epoch = r.u32()
	s.NodeID = r.str8()
	s.Index = r.u16()
	if v := r.scalar(); v != nil {
		s.Value = scalarBytes(v)
	}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("dkg: decode share: %w", err)
	}
	if err := purpose.Validate(s.Purpose); err != nil {
		return nil, fmt.Errorf("dkg: share: purpose %q: %w", s.Purpose, err)
	}
	if err := checkNodeID(s.NodeID); err != nil {
		return nil, fmt.Errorf("dkg: share: %w", err)
	}
	if s.Index == 0 {
		return nil, errors.New("dkg: share: index 0")
	}
	return s, nil
}

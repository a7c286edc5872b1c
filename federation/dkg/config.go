package dkg

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/signpost-federation/signpost/wasm/purpose"
)

const (
	// MaxParticipants bounds n (and the number of old holders of a
	// reshare): issuers are a handful of agencies, and every bound keeps
	// the decoders' allocations small.
	MaxParticipants = 64
	// maxNodeIDLen is the federation's node id bound.
	maxNodeIDLen = 63
	configMagic  = "SPKC1"
)

// ErrInvalidConfig is wrapped by every configuration the package refuses.
var ErrInvalidConfig = errors.New("dkg: invalid config")

// Participant is one node of a session and its Shamir index (1..65535):
// the x at which its share of the key is the polynomial's value.
type Participant struct {
	NodeID string
	Index  uint16
}

// PublicShare is an issuer of a key: its node id, Shamir index and public
// share K_i = k_i·G (32 bytes, ristretto255).
type PublicShare struct {
	NodeID string
	Index  uint16
	Key    []byte
}

// ReshareFrom is the current key a reshare moves: its threshold, holders
// with their public shares (from the signed key record in force) and group
// key.
type ReshareFrom struct {
	T        int
	Holders  []PublicShare
	GroupKey []byte
}

// Config is what every participant of a session agrees on. Its canonical
// encoding is in every Hello, and its hash is the session id every message
// carries, so two participants with different configs never mix messages.
type Config struct {
	// Purpose and Epoch name the key (purpose rule: wasm/purpose).
	Purpose string
	Epoch   uint32
	// T is the threshold of the new key: any T shares evaluate, fewer
	// cannot. 1 ≤ T ≤ len(Participants).
	T int
	// Participants receive shares of the new key (for a fresh key they are
	// also its dealers). Unique node ids and indices.
	Participants []Participant
	// Start and PhaseTimeout fix the schedule (millisecond precision):
	// phase p (1 Hello … 5 Confirm) ends at Start + p·PhaseTimeout at the
	// latest.
	Start        time.Time
	PhaseTimeout time.Duration
	// Reshare, if set, makes the session a reshare of that key: its holders
	// deal, and the group key does not change.
	Reshare *ReshareFrom
}

// normalized returns a copy with participants and holders sorted by index
// and times at millisecond precision, the form that is encoded and hashed.
func (c Config) normalized() Config {
	c.Participants = slices.Clone(c.Participants)
	slices.SortFunc(c.Participants, func(a, b Participant) int { return cmp.Compare(a.Index, b.Index) })
	c.Start = time.UnixMilli(c.Start.UnixMilli()).UTC()
	c.PhaseTimeout = c.PhaseTimeout.Truncate(time.Millisecond)
	if c.Reshare != nil {
		r := *c.Reshare
		r.Holders = slices.Clone(r.Holders)
		for i := range r.Holders {
			r.Holders[i].Key = bytes.Clone(r.Holders[i].Key)
		}
		slices.SortFunc(r.Holders, func(a, b PublicShare) int { return cmp.Compare(a.Index, b.Index) })
		r.GroupKey = bytes.Clone(r.GroupKey)
		c.Reshare = &r
	}
	return c
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if err := purpose.Validate(c.Purpose); err != nil {
		errs = append(errs, fmt.Errorf("purpose %q: %w", c.Purpose, err))
	}
	errs = append(errs, checkParticipants("participant", len(c.Participants), func(i int) (string, uint16) {
		return c.Participants[i].NodeID, c.Participants[i].Index
	})...)
	if c.T < 1 || c.T > len(c.Participants) {
		errs = append(errs, fmt.Errorf("t = %d must be between 1 and n = %d", c.T, len(c.Participants)))
	}
	if c.PhaseTimeout < time.Millisecond || c.PhaseTimeout > time.Hour {
		errs = append(errs, fmt.Errorf("phase timeout %v must be between 1ms and 1h", c.PhaseTimeout))
	}
	if c.Start.IsZero() {
		errs = append(errs, errors.New("start time is not set"))
	}
	if r := c.Reshare; r != nil {
		errs = append(errs, checkParticipants("old holder", len(r.Holders), func(i int) (string, uint16) {
			return r.Holders[i].NodeID, r.Holders[i].Index
		})...)
		if r.T < 1 || r.T > len(r.Holders) {
			errs = append(errs, fmt.Errorf("old t = %d must be between 1 and the %d old holders", r.T, len(r.Holders)))
		}
		for _, h := range r.Holders {
			if _, err := decodeElement(h.Key); err != nil {
				errs = append(errs, fmt.Errorf("old holder %q: public share: %w", h.NodeID, err))
			}
		}
		if _, err := decodeElement(r.GroupKey); err != nil {
			errs = append(errs, fmt.Errorf("old group key: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

func checkParticipants(what string, n int, at func(int) (string, uint16)) []error {
	var errs []error
	if n == 0 || n > MaxParticipants {
		errs = append(errs, fmt.Errorf("%d %ss; must be 1 to %d", n, what, MaxParticipants))
	}
	ids := map[string]bool{}
	idx := map[uint16]bool{}
	for i := range n {
		id, x := at(i)
		if err := checkNodeID(id); err != nil {
			errs = append(errs, fmt.Errorf("%s %d: %w", what, i, err))
		}
		if x == 0 {
			errs = append(errs, fmt.Errorf("%s %q: index 0 is the secret's own point; indices start at 1", what, id))
		}
		if ids[id] {
			errs = append(errs, fmt.Errorf("%s %q named twice", what, id))
		}
		if idx[x] {
			errs = append(errs, fmt.Errorf("%s %q: index %d used twice", what, id, x))
		}
		ids[id], idx[x] = true, true
	}
	return errs
}

// checkNodeID is the federation's node id rule: 1..63 bytes of a-z, 0-9,
// '-', not starting with '-'.
func checkNodeID(s string) error {
	if s == "" || len(s) > maxNodeIDLen || s[0] == '-' {
		return fmt.Errorf("node id must be 1-%d characters of a-z, 0-9, '-' not starting with '-'", maxNodeIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("node id must be 1-%d characters of a-z, 0-9, '-' not starting with '-'", maxNodeIDLen)
		}
	}
	return nil
}

// Encode returns the canonical encoding of the normalized config:
// "SPKC1", str8 purpose, u32 epoch, u16 t, u64 start (Unix ms), u32 phase
// timeout (ms), u16 n and per participant u16 index and str8 node id; then
// u8 0 for a fresh key, or u8 1, u16 old t, u16 old holder count, per holder
// u16 index, str8 node id and its 32-byte public share, and the 32-byte
// group key.
func (c Config) Encode() []byte {
	c = c.normalized()
	b := make([]byte, 0, 64+len(c.Participants)*40)
	b = append(b, configMagic...)
	b = appendStr8(b, c.Purpose)
	b = binary.BigEndian.AppendUint32(b, c.Epoch)
	b = binary.BigEndian.AppendUint16(b, uint16(c.T))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Start.UnixMilli()))
	b = binary.BigEndian.AppendUint32(b, uint32(c.PhaseTimeout.Milliseconds()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Participants)))
	for _, p := range c.Participants {
		b = binary.BigEndian.AppendUint16(b, p.Index)
		b = appendStr8(b, p.NodeID)
	}
	if c.Reshare == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(c.Reshare.T))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Reshare.Holders)))
	for _, h := range c.Reshare.Holders {
		b = binary.BigEndian.AppendUint16(b, h.Index)
		b = appendStr8(b, h.NodeID)
		b = append(b, h.Key...)
	}
	return append(b, c.Reshare.GroupKey...)
}

// SessionID is the hash of the canonical config: the id every message of
// the session carries.
type SessionID [32]byte

// String is the id in hex, as statuses and file names show it.
func (id SessionID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText is the hex form, so that statuses encode as JSON readably.
func (id SessionID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the hex form.
func (id *SessionID) UnmarshalText(b []byte) error {
	v, err := ParseSessionID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseSessionID parses the hex form.
func ParseSessionID(s string) (SessionID, error) {
	var id SessionID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("dkg: session id %q is not %d hex bytes", s, len(id))
	}
	copy(id[:], b)
	return id, nil
}

// ID is the session id of c: SHA-256 of "signpost/v1/dkg session\x00" and
// the canonical encoding.
func (c Config) ID() SessionID {
	return sha256.Sum256(append([]byte("signpost/v1/dkg session\x00"), c.Encode()...))
}

// DecodeConfig parses and validates a canonical config. It refuses any
// encoding that is not the canonical one of the config it decodes to.
func DecodeConfig(b []byte) (Config, error) {
	if len(b) > maxConfigSize {
		return Config{}, fmt.Errorf("%w: %d bytes exceeds %d", ErrInvalidConfig, len(b), maxConfigSize)
	}
	r := reader{b: b}
	if string(r.next(len(configMagic))) != configMagic {
		return Config{}, fmt.Errorf("%w: bad magic", ErrInvalidConfig)
	}
	c := Config{Purpose: r.str8(), Epoch: r.u32(), T: int(r.u16())}
	c.Start = unixMilli(r.u64())
	c.PhaseTimeout = time.Duration(r.u32()) * time.Millisecond
	n := int(r.u16())
	if n > MaxParticipants {
		return Config{}, fmt.Errorf("%w: %d participants, max %d", ErrInvalidConfig, n, MaxParticipants)
	}
	for range n {
		if r.err != nil {
			break
		}
		x := r.u16()
		c.Participants = append(c.Participants, Participant{Index: x, NodeID: r.str8()})
	}
	switch r.u8() {
	case 0:
	case 1:
		rs := &ReshareFrom{T: int(r.u16())}
		m := int(r.u16())
		if m > MaxParticipants {
			return Config{}, fmt.Errorf("%w: %d old holders, max %d", ErrInvalidConfig, m, MaxParticipants)
		}
		for range m {
			if r.err != nil {
				break
			}
			x := r.u16()
			id := r.str8()
			rs.Holders = append(rs.Holders, PublicShare{Index: x, NodeID: id, Key: r.next(elementSize)})
		}
		rs.GroupKey = r.next(elementSize)
		c.Reshare = rs
	default:
		if r.err == nil {
			r.err = errors.New("bad reshare flag")
		}
	}
	if err := r.done(); err != nil {
		return Config{}, fmt.Errorf("%w: decode: %w", ErrInvalidConfig, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	if !bytes.Equal(c.Encode(), b) {
		return Config{}, fmt.Errorf("%w: not in canonical form", ErrInvalidConfig)
	}
	return c, nil
}

// maxConfigSize bounds an encoded config: the fixed fields, then
// MaxParticipants participants and as many old holders at their largest.
const maxConfigSize = 5 + 1 + 255 + 4 + 2 + 8 + 4 + 2 + MaxParticipants*(2+1+maxNodeIDLen) +
	1 + 2 + 2 + MaxParticipants*(2+1+maxNodeIDLen+elementSize) + elementSize

func decodeElement(b []byte) (elem, error) {
	r := reader{b: b}
	e := r.element()
	if err := r.done(); err != nil {
		return nil, err
	}
	if e.IsIdentity() {
		return nil, errors.New("identity element")
	}
	return e, nil
}

package federation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/signpost-federation/signpost/wasm/purpose"
)

// Sentinel errors of descriptor verification. Callers branch on them with
// errors.Is; every error returned by Verify wraps exactly one of them.
var (
	// ErrNotEnrolled: no descriptor was presented at all (empty node
	// metadata, no client certificate extension).
	ErrNotEnrolled = errors.New("federation: node not enrolled")
	// ErrDescriptorForged: the descriptor does not decode canonically or its
	// signature does not verify under this federation's authority key (this
	// includes descriptors issued by another federation's authority).
	ErrDescriptorForged = errors.New("federation: descriptor signature invalid")
	// ErrDescriptorExpired: now is outside [NotBefore, Expires).
	ErrDescriptorExpired = errors.New("federation: descriptor expired or not yet valid")
	// ErrDescriptorRevoked: the authority's revocation list names this
	// descriptor's node id (all serials) or its serial.
	ErrDescriptorRevoked = errors.New("federation: descriptor revoked")
)

// Limits on descriptor fields. They keep a signed descriptor well inside
// memberlist's 512-byte node metadata limit (see MaxSignedDescriptorSize).
const (
	maxNodeIDLen   = 63
	maxAgencyLen   = 100
	maxCategoryLen = 40
	maxPurposes    = 8 // each at most purpose.MaxLen bytes
	maxAddrLen     = 64

	// MaxSignedDescriptorSize is the largest encoded SignedDescriptor the
	// authority will issue or a node will decode: 512 bytes of memberlist
	// metadata minus room for the metadata envelope (see meta.go).
	MaxSignedDescriptorSize = 420
)

const (
	descriptorMagic   = "SPD1"
	descriptorContext = "signpost/v1/descriptor\x00"
)

// Descriptor is what the federation authority asserts about one enrolled
// node. It is immutable once signed; a change (new key, new purposes, renewal)
// is a new descriptor with a higher Serial.
type Descriptor struct {
	// NodeID is the node's unique name in the federation and its memberlist
	// name: 1–63 characters of a–z, 0–9 and '-', not starting with '-'.
	NodeID string
	// Agency is the human-readable name of the agency running the node.
	Agency string
	// Category is the agency's service category (e.g. "social-care").
	Category string
	// Purposes lists the token purposes the node is authorised for, sorted,
	// unique, at most 8.
	Purposes []string
	// PublicKey is the node's Ed25519 key: it signs the holder signature
	// inside sealed entries and authenticates node-to-node TLS.
	PublicKey ed25519.PublicKey
	// GossipAddr and PeerAddr are the registered addresses (host:port), may
	// be empty. They are informational: the addresses in use are advertised
	// in the membership metadata, and TLS authenticates the key, not the
	// address.
	GossipAddr, PeerAddr string
	// NotBefore and Expires bound validity, at one-second precision (UTC).
	NotBefore, Expires time.Time
	// Serial is unique per authority and increases with every enrolment.
	Serial uint64
}

// SignedDescriptor is a Descriptor with the authority's Ed25519 signature
// over its canonical encoding.
type SignedDescriptor struct {
	Descriptor Descriptor
	Signature  []byte
}

// Validate checks the field constraints (not the signature or validity
// period).
func (d *Descriptor) Validate() error {
	var errs []error
	if err := checkName("node id", d.NodeID, maxNodeIDLen); err != nil {
		errs = append(errs, err)
	}
	if d.Agency == "" || len(d.Agency) > maxAgencyLen || !utf8.ValidString(d.Agency) {
		errs = append(errs, fmt.Errorf("agency must be 1-%d bytes of UTF-8", maxAgencyLen))
	}
	if err := checkName("category", d.Category, maxCategoryLen); err != nil {
		errs = append(errs, err)
	}
	if len(d.Purposes) > maxPurposes {
		errs = append(errs, fmt.Errorf("at most %d purposes, got %d", maxPurposes, len(d.Purposes)))
	}
	for i, p := range d.Purposes {
		if err := purpose.Validate(p); err != nil {
			errs = append(errs, fmt.Errorf("purpose %q: %w", p, err))
		}
		if i > 0 && d.Purposes[i-1] >= p {
			errs = append(errs, errors.New("purposes must be sorted and unique"))
		}
	}
	if len(d.PublicKey) != ed25519.PublicKeySize {
		errs = append(errs, fmt.Errorf("public key must be %d bytes", ed25519.PublicKeySize))
	}
	if len(d.GossipAddr) > maxAddrLen || len(d.PeerAddr) > maxAddrLen ||
		!utf8.ValidString(d.GossipAddr) || !utf8.ValidString(d.PeerAddr) {
		errs = append(errs, fmt.Errorf("addresses must be at most %d bytes of UTF-8", maxAddrLen))
	}
	if !d.Expires.After(d.NotBefore) {
		errs = append(errs, errors.New("expires must be after not-before"))
	}
	if d.Serial == 0 {
		errs = append(errs, errors.New("serial must be positive"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("federation: invalid descriptor: %w", errors.Join(errs...))
	}
	return nil
}

// checkName accepts 1..max bytes of [a-z0-9-], not starting with '-'.
func checkName(what, s string, max int) error {
	if s == "" || len(s) > max || s[0] == '-' {
		return fmt.Errorf("%s must be 1-%d characters of a-z, 0-9, '-' not starting with '-'", what, max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%s must be 1-%d characters of a-z, 0-9, '-' not starting with '-'", what, max)
		}
	}
	return nil
}

// encodeBody is the canonical encoding of d, the bytes the authority signs.
// Layout (big-endian): "SPD1", then u8-length-prefixed node id, agency,
// category, u8 purpose count and u8-length-prefixed purposes, the 32-byte
// public key, u8-length-prefixed gossip and peer addresses, i64 not-before
// and i64 expires (Unix seconds), u64 serial.
func (d *Descriptor) encodeBody() []byte {
	b := make([]byte, 0, 256)
	b = append(b, descriptorMagic...)
	b = appendStr8(b, d.NodeID)
	b = appendStr8(b, d.Agency)
	b = appendStr8(b, d.Category)
	b = append(b, byte(len(d.Purposes)))
	for _, p := range d.Purposes {
		b = appendStr8(b, p)
	}
	b = append(b, d.PublicKey...)
	b = appendStr8(b, d.GossipAddr)
	b = appendStr8(b, d.PeerAddr)
	b = binary.BigEndian.AppendUint64(b, uint64(d.NotBefore.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(d.Expires.Unix()))
	b = binary.BigEndian.AppendUint64(b, d.Serial)
	return b
}

// Encode returns the canonical byte form: the body followed by the 64-byte
// signature.
func (s *SignedDescriptor) Encode() []byte {
	return append(s.Descriptor.encodeBody(), s.Signature...)
}

// DecodeSignedDescriptor parses the canonical form produced by Encode. It
// checks structure and field constraints only; call Verify before trusting
// the result. Any input that would not re-encode to the same bytes is
// refused.
func DecodeSignedDescriptor(b []byte) (*SignedDescriptor, error) {
	if len(b) > MaxSignedDescriptorSize {
		return nil, fmt.Errorf("federation: descriptor of %d bytes exceeds %d", len(b), MaxSignedDescriptorSize)
	}
	r := reader{b: b}
	if string(r.next(len(descriptorMagic))) != descriptorMagic {
		return nil, errors.New("federation: not a descriptor (bad magic)")
	}
	var d Descriptor
	d.NodeID = r.str8()
	d.Agency = r.str8()
	d.Category = r.str8()
	n := int(r.u8())
	if n > maxPurposes {
		return nil, fmt.Errorf("federation: descriptor has %d purposes, max %d", n, maxPurposes)
	}
	for i := 0; i < n && r.err == nil; i++ {
		d.Purposes = append(d.Purposes, r.str8())
	}
	d.PublicKey = ed25519.PublicKey(bytes.Clone(r.next(ed25519.PublicKeySize)))
	d.GossipAddr = r.str8()
	d.PeerAddr = r.str8()
	d.NotBefore = unixTime(r.u64())
	d.Expires = unixTime(r.u64())
	d.Serial = r.u64()
	sig := bytes.Clone(r.next(ed25519.SignatureSize))
	if r.err != nil {
		return nil, fmt.Errorf("federation: decode descriptor: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("federation: decode descriptor: %d trailing bytes", len(r.b))
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &SignedDescriptor{Descriptor: d, Signature: sig}, nil
}

// Verify checks, in order, the authority signature, the validity period at
// now and the revocation list (which may be nil). It returns an error
// wrapping ErrDescriptorForged, ErrDescriptorExpired or ErrDescriptorRevoked.
func (s *SignedDescriptor) Verify(authority ed25519.PublicKey, now time.Time, revoked *RevocationList) error {
	if s == nil {
		return ErrNotEnrolled
	}
	if err := s.verifySignature(authority); err != nil {
		return err
	}
	return s.Descriptor.checkValid(now, revoked)
}

// verifySignature checks the fields and the authority signature only.
func (s *SignedDescriptor) verifySignature(authority ed25519.PublicKey) error {
	if len(authority) != ed25519.PublicKeySize || len(s.Signature) != ed25519.SignatureSize ||
		s.Descriptor.Validate() != nil ||
		!ed25519.Verify(authority, descriptorSigned(s.Descriptor.encodeBody()), s.Signature) {
		return fmt.Errorf("node %q: %w", s.Descriptor.NodeID, ErrDescriptorForged)
	}
	return nil
}

// checkValid checks the validity period at now and the revocation list.
func (d *Descriptor) checkValid(now time.Time, revoked *RevocationList) error {
	if now.Before(d.NotBefore) || !now.Before(d.Expires) {
		return fmt.Errorf("node %q serial %d valid %s to %s: %w", d.NodeID, d.Serial,
			d.NotBefore.Format(time.RFC3339), d.Expires.Format(time.RFC3339), ErrDescriptorExpired)
	}
	if revoked.Revoked(d.NodeID, d.Serial) {
		return fmt.Errorf("node %q serial %d: %w", d.NodeID, d.Serial, ErrDescriptorRevoked)
	}
	return nil
}

// HasPurpose reports whether the descriptor authorises purpose.
func (d *Descriptor) HasPurpose(purpose string) bool {
	for _, p := range d.Purposes {
		if p == purpose {
			return true
		}
	}
	return false
}

func descriptorSigned(body []byte) []byte {
	return append([]byte(descriptorContext), body...)
}

func unixTime(u uint64) time.Time { return time.Unix(int64(u), 0).UTC() }

func appendStr8(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

// reader is a sticky-error cursor over a byte slice for the decoders.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("truncated")
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	v := r.next(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u64() uint64 {
	v := r.next(8)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (r *reader) u32() uint32 {
	v := r.next(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *reader) str8() string {
	n := int(r.u8())
	return string(r.next(n))
}

package federation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

const (
	revocationMagic   = "SPR1"
	revocationContext = "signpost/v1/revocations\x00"
	// maxRevocations bounds the decoder: a list is at most this many entries.
	maxRevocations = 100_000
	// MaxRevocationListSize is the largest encoded list a node will decode.
	MaxRevocationListSize = 4 + 8 + 8 + 4 + maxRevocations*(1+maxNodeIDLen+8) + ed25519.SignatureSize
)

// ErrRevocationsStale is returned by Agent.SetRevocations for a list whose
// Version is not newer than the one in force.
var ErrRevocationsStale = errors.New("federation: revocation list not newer than current")

// Revocation names revoked descriptors: every descriptor of NodeID when
// Serial is 0, otherwise only the descriptor with that serial.
type Revocation struct {
	NodeID string
	Serial uint64
}

// RevocationList is the authority's signed, versioned list of revoked
// descriptors. A node keeps the highest-versioned list it has verified; a
// newer list replaces an older one whole. The zero value and nil revoke
// nothing.
type RevocationList struct {
	// Version increases with every list the authority publishes.
	Version uint64
	// IssuedAt is when the authority signed the list (one-second precision).
	IssuedAt time.Time
	// Entries are sorted by (NodeID, Serial) and unique.
	Entries []Revocation
	// Signature is the authority's Ed25519 signature over the canonical body.
	Signature []byte
}

// Revoked reports whether the descriptor (nodeID, serial) is revoked.
func (l *RevocationList) Revoked(nodeID string, serial uint64) bool {
	if l == nil {
		return false
	}
	i, _ := slices.BinarySearchFunc(l.Entries, Revocation{NodeID: nodeID}, compareRevocation)
	for ; i < len(l.Entries) && l.Entries[i].NodeID == nodeID; i++ {
		if s := l.Entries[i].Serial; s == 0 || s == serial {
			return true
		}
	}
	return false
}

func compareRevocation(a, b Revocation) int {
	if c := strings.Compare(a.NodeID, b.NodeID); c != 0 {
		return c
	}
	switch {
	case a.Serial < b.Serial:
		return -1
	case a.Serial > b.Serial:
		return 1
	}
	return 0
}

// encodeBody: "SPR1", u64 version, i64 issued-at (Unix seconds), u32 count,
// then per entry a u8-length-prefixed node id and a u64 serial.
func (l *RevocationList) encodeBody() []byte {
	b := make([]byte, 0, 24+len(l.Entries)*24)
	b = append(b, revocationMagic...)
	b = binary.BigEndian.AppendUint64(b, l.Version)
	b = binary.BigEndian.AppendUint64(b, uint64(l.IssuedAt.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Entries)))
	for _, e := range l.Entries {
		b = appendStr8(b, e.NodeID)
		b = binary.BigEndian.AppendUint64(b, e.Serial)
	}
	return b
}

// Encode returns the canonical form: body then the 64-byte signature.
func (l *RevocationList) Encode() []byte {
	return append(l.encodeBody(), l.Signature...)
}

// DecodeRevocationList parses the canonical form. It checks structure only;
// call Verify before using the list.
func DecodeRevocationList(b []byte) (*RevocationList, error) {
	if len(b) > MaxRevocationListSize {
		return nil, fmt.Errorf("federation: revocation list of %d bytes exceeds %d", len(b), MaxRevocationListSize)
	}
	r := reader{b: b}
	if string(r.next(len(revocationMagic))) != revocationMagic {
		return nil, errors.New("federation: not a revocation list (bad magic)")
	}
	l := &RevocationList{Version: r.u64(), IssuedAt: unixTime(r.u64())}
	n := r.u32()
	if n > maxRevocations {
		return nil, fmt.Errorf("federation: revocation list has %d entries, max %d", n, maxRevocations)
	}
	// Each entry is at least 10 bytes: refuse counts the input cannot hold
	// before allocating.
	if r.err == nil && int(n)*10 > len(r.b) {
		return nil, errors.New("federation: decode revocation list: truncated")
	}
	l.Entries = make([]Revocation, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		e := Revocation{NodeID: r.str8(), Serial: r.u64()}
		if r.err == nil {
			if err := checkName("node id", e.NodeID, maxNodeIDLen); err != nil {
				return nil, fmt.Errorf("federation: decode revocation list: entry %d: %w", i, err)
			}
		}
		if len(l.Entries) > 0 && compareRevocation(l.Entries[len(l.Entries)-1], e) >= 0 {
			return nil, fmt.Errorf("federation: decode revocation list: entry %d out of order", i)
		}
		l.Entries = append(l.Entries, e)
	}
	l.Signature = bytes.Clone(r.next(ed25519.SignatureSize))
	if r.err != nil {
		return nil, fmt.Errorf("federation: decode revocation list: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("federation: decode revocation list: %d trailing bytes", len(r.b))
	}
	return l, nil
}

// Verify checks the authority's signature over the list.
func (l *RevocationList) Verify(authority ed25519.PublicKey) error {
	if l == nil || len(authority) != ed25519.PublicKeySize || len(l.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(authority, append([]byte(revocationContext), l.encodeBody()...), l.Signature) {
		return fmt.Errorf("federation: revocation list: %w", ErrDescriptorForged)
	}
	return nil
}

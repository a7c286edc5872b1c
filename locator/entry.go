package locator

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// FormatV1 is the first byte of every version-1 entry encoding.
const FormatV1 = 1

// MaxEncodedSize is the hard limit DecodeEntry enforces before looking at
// anything else, whatever the Policy says. Policy.MaxEntrySize may only be
// smaller.
const MaxEncodedSize = 4096

// headerSize is the encoded size of an entry without its sealed part:
// format(1) lookup(16) entryPub(32) version(8) expires(8) flags(1)
// sealedLen(2) sig(64).
const headerSize = 1 + 16 + 32 + 8 + 8 + 1 + 2 + 64

const flagDeleted = 1

// Domain-separation labels. Changing any of them is a new format.
const (
	entrySigDomain  = "signpost/locator/entry/v1\x00"
	idDomain        = "signpost/locator/id/v1\x00"
	holderSigDomain = "signpost/locator/holder/v1\x00"
	entryKeyInfo    = "signpost/locator/entry-key/v1\x00"
	digestDomain    = "signpost/locator/digest/v1\x00"
)

// LookupKey is the 16-byte key, derived from a token, under which entries are
// stored and found.
type LookupKey [16]byte

// SealKey is the 32-byte key, derived from the same token, that opens the
// sealed part of entries under the matching LookupKey. It never appears in an
// entry, a log line or an error.
type SealKey [32]byte

// ID names an entry: SHA-256("signpost/locator/id/v1\x00" ‖ lookup ‖ entryPub).
// Its bits are uniform, which the digest tree relies on.
type ID [32]byte

// String returns the first 8 bytes of the id in hex, for logs.
func (id ID) String() string { return fmt.Sprintf("%x", id[:8]) }

// Entry is one versioned, signed statement "the holder sealed inside holds a
// record under Lookup". See docs/DESIGN.md, "Entries".
//
// Entries are immutable once built by Holder.Publish, Holder.Withdraw or
// DecodeEntry: stores keep the pointer, share it between replicas (sim holds
// one *Entry for thousands of simulated nodes) and never copy or modify it.
// Callers must not modify an Entry or the slices it returns either.
type Entry struct {
	Lookup   LookupKey
	EntryPub [32]byte
	// Version orders the writes of one entry; only the entry key's owner
	// can sign a new one.
	Version uint64
	// Expires is the end of retention, in Unix seconds.
	Expires int64
	// Deleted marks a tombstone, kept until Expires.
	Deleted bool
	// Sealed is nonce ‖ XChaCha20-Poly1305(sealKey, payload, lookup ‖ entryPub).
	Sealed []byte
	// Sig is the Ed25519 signature by EntryPub over the encoding without Sig.
	Sig [64]byte

	// Caches filled by the constructors; an Entry built as a literal
	// computes them on demand instead (no lazy writes, so no data race).
	enc  []byte
	id   ID
	sum  [32]byte // SHA-256(digestDomain ‖ enc); hash is its prefix
	hash Hash
	init bool
}

// ExpiresAt returns Expires as a time.
func (e *Entry) ExpiresAt() time.Time { return time.Unix(e.Expires, 0).UTC() }

// ID returns the entry's id.
func (e *Entry) ID() ID {
	if e.init {
		return e.id
	}
	return computeID(e.Lookup, e.EntryPub)
}

func computeID(lookup LookupKey, pub [32]byte) ID {
	h := sha256.New()
	h.Write([]byte(idDomain))
	h.Write(lookup[:])
	h.Write(pub[:])
	var id ID
	h.Sum(id[:0])
	return id
}

// Size returns the length of the canonical encoding.
func (e *Entry) Size() int { return headerSize + len(e.Sealed) }

// Encode returns the canonical encoding: one byte string per entry, so that
// signatures and digests are stable. The returned slice must not be modified.
func (e *Entry) Encode() []byte {
	if e.init {
		return e.enc
	}
	return e.encode()
}

func (e *Entry) encode() []byte {
	b := make([]byte, 0, headerSize+len(e.Sealed))
	b = e.appendSigned(b)
	return append(b, e.Sig[:]...)
}

// appendSigned appends the encoding without the signature.
func (e *Entry) appendSigned(b []byte) []byte {
	b = append(b, FormatV1)
	b = append(b, e.Lookup[:]...)
	b = append(b, e.EntryPub[:]...)
	b = binary.BigEndian.AppendUint64(b, e.Version)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Expires))
	var flags byte
	if e.Deleted {
		flags |= flagDeleted
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Sealed)))
	return append(b, e.Sealed...)
}

// DigestHash returns the entry's contribution to the anti-entropy digest:
// the first 16 bytes of SHA-256(domain ‖ encoding).
func (e *Entry) DigestHash() Hash {
	if e.init {
		return e.hash
	}
	return digestHash(e.encode())
}

func digestHash(enc []byte) Hash {
	sum := digestSum(enc)
	var out Hash
	copy(out[:], sum[:])
	return out
}

func digestSum(enc []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(digestDomain))
	h.Write(enc)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// seal fills the caches; it is called once by every constructor.
func (e *Entry) seal() *Entry {
	e.enc = e.encode()
	e.id = computeID(e.Lookup, e.EntryPub)
	e.sum = digestSum(e.enc)
	copy(e.hash[:], e.sum[:])
	e.init = true
	return e
}

// VerifySignature reports whether Sig is a valid Ed25519 signature by
// EntryPub over the encoding. It does not check policy.
func (e *Entry) VerifySignature() bool {
	enc := e.Encode()
	msg := make([]byte, 0, len(entrySigDomain)+len(enc)-64)
	msg = append(msg, entrySigDomain...)
	msg = append(msg, enc[:len(enc)-64]...)
	return ed25519.Verify(ed25519.PublicKey(e.EntryPub[:]), msg, e.Sig[:])
}

func signEntry(e *Entry, key ed25519.PrivateKey) {
	msg := append([]byte(entrySigDomain), e.appendSigned(nil)...)
	copy(e.Sig[:], ed25519.Sign(key, msg))
}

// DecodeEntry parses a canonical encoding. It enforces MaxEncodedSize, exact
// length and the format byte; it does not verify the signature or policy
// (Store.Apply does). Errors wrap ErrTooLarge, ErrTruncated or ErrMalformed.
// The input is copied; the returned Entry is immutable.
func DecodeEntry(b []byte) (*Entry, error) {
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("decode entry of %d bytes (limit %d): %w", len(b), MaxEncodedSize, ErrTooLarge)
	}
	if len(b) < headerSize {
		return nil, fmt.Errorf("decode entry of %d bytes (need %d): %w", len(b), headerSize, ErrTruncated)
	}
	if b[0] != FormatV1 {
		return nil, fmt.Errorf("decode entry: format %d: %w", b[0], ErrMalformed)
	}
	e := &Entry{}
	p := b[1:]
	copy(e.Lookup[:], p[:16])
	copy(e.EntryPub[:], p[16:48])
	e.Version = binary.BigEndian.Uint64(p[48:56])
	e.Expires = int64(binary.BigEndian.Uint64(p[56:64]))
	flags := p[64]
	if flags&^flagDeleted != 0 {
		return nil, fmt.Errorf("decode entry: unknown flags %#x: %w", flags, ErrMalformed)
	}
	e.Deleted = flags&flagDeleted != 0
	n := int(binary.BigEndian.Uint16(p[65:67]))
	rest := p[67:]
	if len(rest) < n+64 {
		return nil, fmt.Errorf("decode entry: sealed part of %d bytes: %w", n, ErrTruncated)
	}
	if len(rest) > n+64 {
		return nil, fmt.Errorf("decode entry: %d trailing bytes: %w", len(rest)-n-64, ErrMalformed)
	}
	e.Sealed = bytes.Clone(rest[:n])
	if e.Sealed == nil {
		e.Sealed = []byte{}
	}
	copy(e.Sig[:], rest[n:])
	return e.seal(), nil
}

// Compare orders two writes of the same entry id: the higher Version wins;
// at equal versions a tombstone wins; then the lexicographically greater
// encoding. It is a total order on distinct encodings, which makes the merge
// commutative, associative and idempotent. It returns -1, 0 or +1.
func Compare(a, b *Entry) int {
	switch {
	case a.Version < b.Version:
		return -1
	case a.Version > b.Version:
		return 1
	case a.Deleted != b.Deleted:
		if a.Deleted {
			return 1
		}
		return -1
	}
	return bytes.Compare(a.Encode(), b.Encode())
}

// NewEntry builds and signs an entry with an explicit entry key: the low
// level under Holder, for simulations and tools that generate many entries
// and manage keys themselves (sealed is taken as is, unopened by anyone
// without the matching seal). The entry's EntryPub is key's public half.
func NewEntry(lookup LookupKey, key ed25519.PrivateKey, version uint64, expires time.Time, deleted bool, sealed []byte) (*Entry, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("locator: entry key of %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if headerSize+len(sealed) > MaxEncodedSize {
		return nil, fmt.Errorf("locator: sealed part of %d bytes: %w", len(sealed), ErrTooLarge)
	}
	e := &Entry{Lookup: lookup, Version: version, Expires: expires.Unix(), Deleted: deleted, Sealed: bytes.Clone(sealed)}
	if e.Sealed == nil {
		e.Sealed = []byte{}
	}
	copy(e.EntryPub[:], key.Public().(ed25519.PublicKey))
	signEntry(e, key)
	return e.seal(), nil
}

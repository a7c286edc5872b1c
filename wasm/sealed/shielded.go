package sealed

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// Shielded format constants. Changing any of them is a new format.
const (
	// PayloadShielded is the first byte of a shielded payload: the entry
	// names a broker, and the holder's identity is sealed to it.
	PayloadShielded = 2
	// ShieldInfoDomain starts the HPKE info of the inner blob.
	ShieldInfoDomain = "signpost/locator/shielded/v1\x00"
	// innerPlainSize is the fixed size of the inner plaintext:
	// len(1) ‖ holder id padded to MaxNodeIDLen ‖ len(1) ‖ category padded
	// to MaxCategoryLen ‖ registered-at(8) ‖ holder signature(64).
	innerPlainSize = 1 + MaxNodeIDLen + 1 + MaxCategoryLen + 8 + ed25519.SignatureSize
	// InnerSize is the fixed size of the inner blob: the HPKE encapsulated
	// key (32, X25519) ‖ ciphertext of the padded plaintext ‖ tag (16).
	InnerSize = 32 + innerPlainSize + Overhead
)

// The HPKE suite of the inner blob (RFC 9180) is DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305 — the suite federation/dkg
// uses. They are built where they are used, not in package variables, so
// that the WebAssembly module, which never seals or opens an inner blob,
// does not link them.

// ErrNotBroker: the inner blob of a shielded entry did not open with this
// node's key: it is not the broker the entry names, or the blob was
// tampered with or moved to another entry.
var ErrNotBroker = errors.New("sealed: shielded identity does not open with this broker's key")

// Shield is what a reader with the seal key learns of a shielded entry: the
// broker node that speaks for the holder, and the inner blob that only the
// broker can open. Broker is "" when the entry is not shielded.
type Shield struct {
	Broker string
	// Inner is the holder's identity and signature sealed to the broker
	// (InnerSize bytes). It aliases the decrypted payload.
	Inner []byte
}

// Shielded reports whether the entry names a broker instead of its holder.
func (s Shield) Shielded() bool { return s.Broker != "" }

// BrokerPublicKey returns the X25519 key that entries are shielded to for
// the broker whose enrolled Ed25519 key is pub: the Montgomery form of the
// same point (u = (1+y)/(1−y) mod 2²⁵⁵−19), so that every enrolled node is a
// possible broker without a new key or re-enrolment. See docs/RATIONALE.md,
// "Why is a shielded entry sealed to the broker's node key?".
func BrokerPublicKey(pub ed25519.PublicKey) (*ecdh.PublicKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("sealed: broker key of %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	le := make([]byte, 32)
	for i := range le {
		le[i] = pub[31-i]
	}
	le[0] &= 0x7f // the sign of x is not needed for u
	y := new(big.Int).SetBytes(le)
	if y.Cmp(p) >= 0 {
		return nil, errors.New("sealed: broker key is not canonical")
	}
	den := new(big.Int).Sub(big.NewInt(1), y)
	den.Mod(den, p)
	if den.Sign() == 0 {
		return nil, errors.New("sealed: broker key is the identity point")
	}
	u := new(big.Int).Add(big.NewInt(1), y)
	u.Mul(u, den.ModInverse(den, p))
	u.Mod(u, p)
	be := u.FillBytes(make([]byte, 32))
	out := make([]byte, 32)
	for i := range out {
		out[i] = be[31-i]
	}
	k, err := ecdh.X25519().NewPublicKey(out)
	if err != nil {
		return nil, fmt.Errorf("sealed: broker key: %w", err)
	}
	return k, nil
}

// BrokerPrivateKey returns the X25519 half of BrokerPublicKey for the node
// whose enrolled Ed25519 key is nodeKey: the clamped scalar Ed25519 itself
// derives from the seed (RFC 8032 §5.1.5).
func BrokerPrivateKey(nodeKey ed25519.PrivateKey) (*ecdh.PrivateKey, error) {
	if len(nodeKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sealed: broker node key of %d bytes, want %d", len(nodeKey), ed25519.PrivateKeySize)
	}
	h := sha512.Sum512(nodeKey.Seed())
	k, err := ecdh.X25519().NewPrivateKey(h[:32])
	if err != nil {
		return nil, fmt.Errorf("sealed: broker key: %w", err)
	}
	return k, nil
}

// shieldInfo is the HPKE info of the inner blob: it binds the blob to this
// entry (lookup, entryPub) and to the broker named beside it.
func shieldInfo(lookup [16]byte, entryPub [32]byte, broker string) []byte {
	b := make([]byte, 0, len(ShieldInfoDomain)+48+1+len(broker))
	b = append(b, ShieldInfoDomain...)
	b = append(b, lookup[:]...)
	b = append(b, entryPub[:]...)
	b = append(b, byte(len(broker)))
	return append(b, broker...)
}

// appendPadded appends len(1) ‖ s ‖ zeros up to size bytes of s.
func appendPadded(b []byte, s string, size int) []byte {
	b = append(b, byte(len(s)))
	b = append(b, s...)
	return append(b, make([]byte, size-len(s))...)
}

// SealShielded builds the sealed part of a shielded entry: under the seal
// key it says only "shielded, brokered by broker, since registered-at", and
// carries the holder's identity and node signature (by nodeKey, as
// [HolderSigned]) sealed with HPKE to the broker's key brokerPub (its
// enrolled Ed25519 key). Holder id and category are padded to their maximum
// lengths, so the sealed part's length depends on the broker id only.
func SealShielded(rand io.Reader, key [32]byte, lookup [16]byte, entryPub [32]byte, nodeKey ed25519.PrivateKey, id Identity, broker string, brokerPub ed25519.PublicKey) ([]byte, error) {
	if err := checkIdentity(id); err != nil {
		return nil, err
	}
	if broker == "" || len(broker) > MaxNodeIDLen {
		return nil, fmt.Errorf("sealed: broker id of %d bytes (1..%d)", len(broker), MaxNodeIDLen)
	}
	if len(nodeKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sealed: node key of %d bytes, want %d", len(nodeKey), ed25519.PrivateKeySize)
	}
	xpub, err := BrokerPublicKey(brokerPub)
	if err != nil {
		return nil, err
	}
	hpub, err := hpke.NewDHKEMPublicKey(xpub)
	if err != nil {
		return nil, fmt.Errorf("sealed: broker key: %w", err)
	}
	plain := make([]byte, 0, innerPlainSize)
	plain = appendPadded(plain, id.NodeID, MaxNodeIDLen)
	plain = appendPadded(plain, id.Category, MaxCategoryLen)
	plain = binary.BigEndian.AppendUint64(plain, uint64(id.RegisteredAt))
	plain = append(plain, ed25519.Sign(nodeKey, HolderSigned(lookup, entryPub, id))...)
	inner, err := hpke.Seal(hpub, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), shieldInfo(lookup, entryPub, broker), plain)
	if err != nil {
		return nil, fmt.Errorf("sealed: seal to broker: %w", err)
	}
	if len(inner) != InnerSize {
		return nil, fmt.Errorf("sealed: inner blob of %d bytes, want %d", len(inner), InnerSize)
	}
	payload := make([]byte, 0, 2+len(broker)+8+InnerSize)
	payload = append(payload, PayloadShielded, byte(len(broker)))
	payload = append(payload, broker...)
	payload = binary.BigEndian.AppendUint64(payload, uint64(id.RegisteredAt))
	payload = append(payload, inner...)
	return sealPayload(rand, key, lookup, entryPub, payload)
}

// ParseShielded parses a decrypted shielded payload: version(1)=2 ‖ len(1) ‖
// broker id ‖ registered-at(8) ‖ inner blob(InnerSize). Inner aliases p.
// Its errors are plain sentences for Error.Detail.
func ParseShielded(p []byte) (Shield, int64, error) {
	if len(p) < 1 || p[0] != PayloadShielded {
		return Shield{}, 0, errors.New("not a shielded payload")
	}
	p = p[1:]
	if len(p) < 1 || p[0] == 0 || int(p[0]) > MaxNodeIDLen || len(p) < 1+int(p[0]) {
		return Shield{}, 0, errors.New("truncated broker id")
	}
	broker, p := string(p[1:1+int(p[0])]), p[1+int(p[0]):]
	if len(p) != 8+InnerSize {
		return Shield{}, 0, errors.New("bad shielded payload length")
	}
	return Shield{Broker: broker, Inner: p[8:]}, int64(binary.BigEndian.Uint64(p[:8])), nil
}

// AppendShielded appends the encoding ParseShielded reads (for tests and
// fuzzing: SealShielded builds it itself).
func AppendShielded(b []byte, s Shield, registeredAt int64) []byte {
	b = append(b, PayloadShielded, byte(len(s.Broker)))
	b = append(b, s.Broker...)
	b = binary.BigEndian.AppendUint64(b, uint64(registeredAt))
	return append(b, s.Inner...)
}

// OpenShield is the broker's side: it opens the inner blob of a shielded
// entry (lookup, entryPub) that names broker, with the broker's node key,
// and checks the holder's node signature against keys. Errors:
// [ErrNotBroker] (not this broker's blob, tampered, or moved), [*Error]
// with ReasonSealBroken (malformed plaintext), ReasonUnknownHolder or
// ReasonHolderSignature.
func OpenShield(brokerKey ed25519.PrivateKey, broker string, lookup [16]byte, entryPub [32]byte, inner []byte, keys NodeKeys) (Identity, error) {
	if len(inner) != InnerSize {
		return Identity{}, ErrNotBroker
	}
	xpriv, err := BrokerPrivateKey(brokerKey)
	if err != nil {
		return Identity{}, err
	}
	hpriv, err := hpke.NewDHKEMPrivateKey(xpriv)
	if err != nil {
		return Identity{}, fmt.Errorf("sealed: broker key: %w", err)
	}
	plain, err := hpke.Open(hpriv, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), shieldInfo(lookup, entryPub, broker), inner)
	if err != nil {
		return Identity{}, ErrNotBroker
	}
	id, sig, err := parseInner(plain)
	if err != nil {
		return Identity{}, fail(ReasonSealBroken, err.Error())
	}
	pub, ok := keys(id.NodeID)
	if !ok {
		return Identity{}, fail(ReasonUnknownHolder, "")
	}
	if !Verify(pub, lookup, entryPub, id, sig) {
		return Identity{}, fail(ReasonHolderSignature, "")
	}
	return id, nil
}

// parseInner parses the fixed-size inner plaintext; padding must be zero,
// so that it has one encoding.
func parseInner(p []byte) (Identity, []byte, error) {
	if len(p) != innerPlainSize {
		return Identity{}, nil, errors.New("bad inner length")
	}
	field := func(p []byte, size int) (string, error) {
		n := int(p[0])
		if n > size {
			return "", errors.New("inner field too long")
		}
		for _, c := range p[1+n : 1+size] {
			if c != 0 {
				return "", errors.New("inner padding not zero")
			}
		}
		return string(p[1 : 1+n]), nil
	}
	var id Identity
	var err error
	if id.NodeID, err = field(p, MaxNodeIDLen); err != nil || id.NodeID == "" {
		return Identity{}, nil, errors.New("bad holder id")
	}
	p = p[1+MaxNodeIDLen:]
	if id.Category, err = field(p, MaxCategoryLen); err != nil {
		return Identity{}, nil, err
	}
	p = p[1+MaxCategoryLen:]
	id.RegisteredAt = int64(binary.BigEndian.Uint64(p[:8]))
	return id, p[8:], nil
}

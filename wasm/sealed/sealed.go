package sealed

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Format constants. Changing any of them is a new format.
const (
	// PayloadV1 is the first byte of a version-1 payload.
	PayloadV1 = 1
	// MaxNodeIDLen bounds a holder node id in bytes.
	MaxNodeIDLen = 128
	// MaxCategoryLen bounds a service category in bytes.
	MaxCategoryLen = 64
	// HolderSigDomain prefixes what the holder node signs.
	HolderSigDomain = "signpost/locator/holder/v1\x00"
	// NonceSize is the length of the nonce that starts a sealed part.
	NonceSize = chacha20poly1305.NonceSizeX
	// Overhead is the AEAD tag length.
	Overhead = chacha20poly1305.Overhead
)

// Identity is what the sealed part says: which node holds a record, for
// which service category, since when. A tombstone's identity has an empty
// category and RegisteredAt 0.
type Identity struct {
	NodeID       string
	Category     string
	RegisteredAt int64 // Unix seconds
}

// Reason says why an entry did not open.
type Reason uint8

// Reasons, in the order a reader meets them.
const (
	// ReasonMalformed: the entry encoding does not parse (ReadEntry).
	ReasonMalformed Reason = iota + 1
	// ReasonSealBroken: wrong seal key, tampered or garbled sealed part.
	ReasonSealBroken
	// ReasonUnknownHolder: the named node is not a member.
	ReasonUnknownHolder
	// ReasonHolderSignature: the holder signature does not verify.
	ReasonHolderSignature
)

// Sentinels, one per Reason; an [*Error] matches its Reason's sentinel with
// errors.Is.
var (
	ErrMalformed       = errors.New("sealed: entry malformed")
	ErrSealBroken      = errors.New("sealed: sealed part does not open")
	ErrUnknownHolder   = errors.New("sealed: holder node unknown")
	ErrHolderSignature = errors.New("sealed: holder signature does not verify")
)

// Err returns the sentinel of r.
func (r Reason) Err() error {
	switch r {
	case ReasonMalformed:
		return ErrMalformed
	case ReasonSealBroken:
		return ErrSealBroken
	case ReasonUnknownHolder:
		return ErrUnknownHolder
	case ReasonHolderSignature:
		return ErrHolderSignature
	}
	return nil
}

// Error is a failure to open an entry. Detail is a short explanation safe
// to log ("truncated node id"), empty when the reason says it all.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string {
	msg := e.Reason.Err().Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Is matches the sentinel of the error's Reason.
func (e *Error) Is(target error) bool { return target != nil && target == e.Reason.Err() }

func fail(r Reason, detail string) error { return &Error{Reason: r, Detail: detail} }

// AppendIdentity appends len ‖ node id ‖ len ‖ category ‖ registered-at.
// The lengths must be within the limits (callers check; Seal does).
func AppendIdentity(b []byte, id Identity) []byte {
	b = append(b, byte(len(id.NodeID)))
	b = append(b, id.NodeID...)
	b = append(b, byte(len(id.Category)))
	b = append(b, id.Category...)
	return binary.BigEndian.AppendUint64(b, uint64(id.RegisteredAt))
}

// HolderSigned returns what the holder node's key signs: the binding of its
// identity to this lookup key and entry key.
func HolderSigned(lookup [16]byte, entryPub [32]byte, id Identity) []byte {
	b := make([]byte, 0, len(HolderSigDomain)+48+2+len(id.NodeID)+len(id.Category)+8)
	b = append(b, HolderSigDomain...)
	b = append(b, lookup[:]...)
	b = append(b, entryPub[:]...)
	return AppendIdentity(b, id)
}

// AD returns the associated data of the seal: lookup ‖ entryPub.
func AD(lookup [16]byte, entryPub [32]byte) []byte {
	ad := make([]byte, 0, 48)
	ad = append(ad, lookup[:]...)
	return append(ad, entryPub[:]...)
}

func checkIdentity(id Identity) error {
	if id.NodeID == "" || len(id.NodeID) > MaxNodeIDLen {
		return fmt.Errorf("sealed: node id of %d bytes (1..%d)", len(id.NodeID), MaxNodeIDLen)
	}
	if len(id.Category) > MaxCategoryLen {
		return fmt.Errorf("sealed: category of %d bytes (max %d)", len(id.Category), MaxCategoryLen)
	}
	return nil
}

// Seal builds the sealed part for the entry (lookup, entryPub): the payload
// with the holder node's signature by nodeKey, sealed under key with a
// nonce read from rand. rand must be a cryptographic source in production:
// every holder of the same person shares the seal key.
func Seal(rand io.Reader, key [32]byte, lookup [16]byte, entryPub [32]byte, nodeKey ed25519.PrivateKey, id Identity) ([]byte, error) {
	if err := checkIdentity(id); err != nil {
		return nil, err
	}
	if len(nodeKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sealed: node key of %d bytes, want %d", len(nodeKey), ed25519.PrivateKeySize)
	}
	payload := make([]byte, 0, 3+len(id.NodeID)+len(id.Category)+8+ed25519.SignatureSize)
	payload = append(payload, PayloadV1)
	payload = AppendIdentity(payload, id)
	payload = append(payload, ed25519.Sign(nodeKey, HolderSigned(lookup, entryPub, id))...)
	return sealPayload(rand, key, lookup, entryPub, payload)
}

// sealPayload seals a payload under key with a nonce read from rand.
func sealPayload(rand io.Reader, key [32]byte, lookup [16]byte, entryPub [32]byte, payload []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	nonce := make([]byte, NonceSize, NonceSize+len(payload)+Overhead)
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("sealed: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, payload, AD(lookup, entryPub)), nil
}

// Open decrypts a version-1 sealed part under key and parses the payload.
// It authenticates before parsing. Errors are [*Error] with
// ReasonSealBroken (a shielded payload is one: see [OpenVerify]). The
// returned signature is not yet checked: see [Verify] and [OpenEntry].
func Open(key [32]byte, lookup [16]byte, entryPub [32]byte, sealed []byte) (Identity, []byte, error) {
	p, err := decrypt(key, lookup, entryPub, sealed)
	if err != nil {
		return Identity{}, nil, err
	}
	id, sig, err := ParsePayload(p)
	if err != nil {
		return Identity{}, nil, fail(ReasonSealBroken, err.Error())
	}
	return id, sig, nil
}

// decrypt authenticates and decrypts a sealed part.
func decrypt(key [32]byte, lookup [16]byte, entryPub [32]byte, sealed []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, fail(ReasonSealBroken, "")
	}
	if len(sealed) < NonceSize+Overhead {
		return nil, fail(ReasonSealBroken, "sealed part too short")
	}
	p, err := aead.Open(nil, sealed[:NonceSize], sealed[NonceSize:], AD(lookup, entryPub))
	if err != nil {
		return nil, fail(ReasonSealBroken, "")
	}
	return p, nil
}

// ParsePayload parses a decrypted payload into the identity and the holder
// signature (aliasing p). Its errors are plain sentences for Error.Detail.
func ParsePayload(p []byte) (Identity, []byte, error) {
	if len(p) < 1 || p[0] != PayloadV1 {
		return Identity{}, nil, errors.New("unknown payload format")
	}
	p = p[1:]
	var id Identity
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return Identity{}, nil, errors.New("truncated node id")
	}
	id.NodeID, p = string(p[1:1+int(p[0])]), p[1+int(p[0]):]
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return Identity{}, nil, errors.New("truncated category")
	}
	id.Category, p = string(p[1:1+int(p[0])]), p[1+int(p[0]):]
	if len(p) != 8+ed25519.SignatureSize {
		return Identity{}, nil, errors.New("bad payload length")
	}
	id.RegisteredAt = int64(binary.BigEndian.Uint64(p[:8]))
	return id, p[8:], nil
}

// Verify reports whether sig is the holder node's signature, by nodePub,
// binding id to (lookup, entryPub). A key of the wrong size never verifies.
func Verify(nodePub ed25519.PublicKey, lookup [16]byte, entryPub [32]byte, id Identity, sig []byte) bool {
	return len(nodePub) == ed25519.PublicKeySize && ed25519.Verify(nodePub, HolderSigned(lookup, entryPub, id), sig)
}

// NodeKeys resolves a node id to its enrolled public key (membership).
type NodeKeys func(nodeID string) (ed25519.PublicKey, bool)

// OpenVerify opens a sealed part and checks it against keys: the reader's
// whole check of one sealed part. For a version-1 payload it checks the
// holder signature and returns the holder's identity with a zero Shield.
// For a shielded payload it returns only RegisteredAt in the identity and
// the Shield, after checking that the broker it names is a member: nobody
// but the broker can check the holder (see [OpenShield]). Errors are
// [*Error] with ReasonSealBroken, ReasonUnknownHolder (the holder, or the
// broker, is not a member) or ReasonHolderSignature.
func OpenVerify(key [32]byte, lookup [16]byte, entryPub [32]byte, sealed []byte, keys NodeKeys) (Identity, Shield, error) {
	p, err := decrypt(key, lookup, entryPub, sealed)
	if err != nil {
		return Identity{}, Shield{}, err
	}
	if len(p) > 0 && p[0] == PayloadShielded {
		sh, reg, err := ParseShielded(p)
		if err != nil {
			return Identity{}, Shield{}, fail(ReasonSealBroken, err.Error())
		}
		if _, ok := keys(sh.Broker); !ok {
			return Identity{}, Shield{}, fail(ReasonUnknownHolder, "broker not a member")
		}
		return Identity{RegisteredAt: reg}, sh, nil
	}
	id, sig, err := ParsePayload(p)
	if err != nil {
		return Identity{}, Shield{}, fail(ReasonSealBroken, err.Error())
	}
	pub, ok := keys(id.NodeID)
	if !ok {
		return Identity{}, Shield{}, fail(ReasonUnknownHolder, "")
	}
	if !Verify(pub, lookup, entryPub, id, sig) {
		return Identity{}, Shield{}, fail(ReasonHolderSignature, "")
	}
	return id, Shield{}, nil
}

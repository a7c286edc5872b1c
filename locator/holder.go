package locator

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Limits of the sealed payload.
const (
	MaxNodeIDLen   = 128
	MaxCategoryLen = 64
	payloadV1      = 1
)

// Holder is the publishing side of one node: it derives a per-entry Ed25519
// key for every lookup key from its secret, seals the node's identity under
// the seal key, and signs entries. A Holder is safe for concurrent use.
type Holder struct {
	nodeID  string
	nodeKey ed25519.PrivateKey
	secret  [32]byte
	rand    io.Reader
}

// NewHolder returns a Holder for nodeID, whose enrolled descriptor key is
// nodeKey, with the node's 32-byte holder secret (which must stay on the node:
// anyone holding it can rewrite the node's entries).
func NewHolder(nodeID string, nodeKey ed25519.PrivateKey, secret [32]byte) (*Holder, error) {
	if nodeID == "" || len(nodeID) > MaxNodeIDLen {
		return nil, fmt.Errorf("locator: holder node id of %d bytes (1..%d)", len(nodeID), MaxNodeIDLen)
	}
	if len(nodeKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("locator: holder node key of %d bytes, want %d", len(nodeKey), ed25519.PrivateKeySize)
	}
	if secret == ([32]byte{}) {
		return nil, errors.New("locator: holder secret is all zero")
	}
	return &Holder{nodeID: nodeID, nodeKey: nodeKey, secret: secret, rand: rand.Reader}, nil
}

// SetNonceSource replaces the source of seal nonces (crypto/rand by
// default) so that tests and simulations are reproducible from a seed. Never
// in production: a predictable or repeated nonce under a seal key that
// several holders share (every holder of the same person has it) breaks the
// seal. Not safe to call concurrently with Publish or Withdraw, and r must
// itself be safe for concurrent use if the Holder is used concurrently.
func (h *Holder) SetNonceSource(r io.Reader) { h.rand = r }

// NodeID returns the holder's node id.
func (h *Holder) NodeID() string { return h.nodeID }

// entryKey derives the per-entry key: Ed25519 from HKDF-SHA256(secret,
// info = label ‖ lookup). Stable for the holder, unlinkable to it.
func (h *Holder) entryKey(lookup LookupKey) ed25519.PrivateKey {
	seed, err := hkdf.Key(sha256.New, h.secret[:], nil, entryKeyInfo+string(lookup[:]), ed25519.SeedSize)
	if err != nil {
		panic("locator: hkdf: " + err.Error()) // cannot happen for a 32-byte output
	}
	return ed25519.NewKeyFromSeed(seed)
}

// EntryPub returns the public entry key this holder uses under lookup.
func (h *Holder) EntryPub(lookup LookupKey) [32]byte {
	var pub [32]byte
	copy(pub[:], h.entryKey(lookup).Public().(ed25519.PublicKey))
	return pub
}

// EntryID returns the id of this holder's entry under lookup.
func (h *Holder) EntryID(lookup LookupKey) ID {
	return computeID(lookup, h.EntryPub(lookup))
}

// Publish builds and signs version `version` of this holder's live entry
// under lookup. Versions must increase with every write of the same entry;
// the caller (the node) keeps the counter durably. Times are truncated to
// whole seconds.
func (h *Holder) Publish(lookup LookupKey, seal SealKey, category string, version uint64, registeredAt, expires time.Time) (*Entry, error) {
	return h.build(lookup, seal, category, version, registeredAt, expires, false)
}

// Withdraw builds a tombstone (Deleted) for this holder's entry under lookup.
// Its sealed part names the holder (with an empty category), so a watcher
// with the token learns who withdrew. expires should be at least the expiry
// of every earlier version, or a lagging replica may resurrect one after the
// tombstone expires.
func (h *Holder) Withdraw(lookup LookupKey, seal SealKey, version uint64, expires time.Time) (*Entry, error) {
	return h.build(lookup, seal, "", version, time.Unix(0, 0), expires, true)
}

func (h *Holder) build(lookup LookupKey, seal SealKey, category string, version uint64, registeredAt, expires time.Time, deleted bool) (*Entry, error) {
	if len(category) > MaxCategoryLen {
		return nil, fmt.Errorf("locator: category of %d bytes (max %d)", len(category), MaxCategoryLen)
	}
	key := h.entryKey(lookup)
	e := &Entry{Lookup: lookup, Version: version, Expires: expires.Unix(), Deleted: deleted}
	copy(e.EntryPub[:], key.Public().(ed25519.PublicKey))
	reg := registeredAt.Unix()

	payload := make([]byte, 0, 3+len(h.nodeID)+len(category)+8+64)
	payload = append(payload, payloadV1)
	payload = appendIdentity(payload, h.nodeID, category, reg)
	nodeSig := ed25519.Sign(h.nodeKey, holderSigned(lookup, e.EntryPub, h.nodeID, category, reg))
	payload = append(payload, nodeSig...)

	aead, err := chacha20poly1305.NewX(seal[:])
	if err != nil {
		return nil, fmt.Errorf("locator: seal: %w", err)
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(payload)+aead.Overhead())
	if _, err := io.ReadFull(h.rand, nonce); err != nil {
		return nil, fmt.Errorf("locator: seal nonce: %w", err)
	}
	e.Sealed = aead.Seal(nonce, nonce, payload, sealAD(lookup, e.EntryPub))
	signEntry(e, key)
	return e.seal(), nil
}

func appendIdentity(b []byte, nodeID, category string, reg int64) []byte {
	b = append(b, byte(len(nodeID)))
	b = append(b, nodeID...)
	b = append(b, byte(len(category)))
	b = append(b, category...)
	return binary.BigEndian.AppendUint64(b, uint64(reg))
}

// holderSigned is what the holder's node key signs: the binding of its
// identity to this lookup key and entry key.
func holderSigned(lookup LookupKey, pub [32]byte, nodeID, category string, reg int64) []byte {
	b := make([]byte, 0, len(holderSigDomain)+48+2+len(nodeID)+len(category)+8)
	b = append(b, holderSigDomain...)
	b = append(b, lookup[:]...)
	b = append(b, pub[:]...)
	return appendIdentity(b, nodeID, category, reg)
}

func sealAD(lookup LookupKey, pub [32]byte) []byte {
	ad := make([]byte, 0, 48)
	ad = append(ad, lookup[:]...)
	return append(ad, pub[:]...)
}

// NodeKeys resolves a node id to its enrolled public key; membership (the
// federation's verified descriptors) provides it.
type NodeKeys interface {
	NodeKey(nodeID string) (ed25519.PublicKey, bool)
}

// Holding is what an opened entry says: which node holds a record, for
// which service category, since when.
type Holding struct {
	NodeID       string
	Category     string
	RegisteredAt time.Time
	// Withdrawn is true when the entry is a tombstone.
	Withdrawn bool
}

// Open decrypts the sealed part with seal and checks the holder's node
// signature against keys. It fails with ErrSealBroken (wrong key, tampered
// or garbled payload), ErrUnknownHolder (node id not in keys) or
// ErrHolderSignature; a caller must then drop the entry and count the reason
// (Store.NoteRejected), never show it. Open does not check the entry
// signature: only entries a Store accepted should be opened.
func (e *Entry) Open(seal SealKey, keys NodeKeys) (Holding, error) {
	aead, err := chacha20poly1305.NewX(seal[:])
	if err != nil {
		return Holding{}, fmt.Errorf("open entry %s: %w", e.ID(), ErrSealBroken)
	}
	if len(e.Sealed) < aead.NonceSize()+aead.Overhead() {
		return Holding{}, fmt.Errorf("open entry %s: sealed part too short: %w", e.ID(), ErrSealBroken)
	}
	nonce, ct := e.Sealed[:aead.NonceSize()], e.Sealed[aead.NonceSize():]
	p, err := aead.Open(nil, nonce, ct, sealAD(e.Lookup, e.EntryPub))
	if err != nil {
		return Holding{}, fmt.Errorf("open entry %s: %w", e.ID(), ErrSealBroken)
	}
	nodeID, category, reg, sig, err := parsePayload(p)
	if err != nil {
		return Holding{}, fmt.Errorf("open entry %s: %v: %w", e.ID(), err, ErrSealBroken)
	}
	pub, ok := keys.NodeKey(nodeID)
	if !ok {
		return Holding{}, fmt.Errorf("open entry %s: %w", e.ID(), ErrUnknownHolder)
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, holderSigned(e.Lookup, e.EntryPub, nodeID, category, reg), sig) {
		return Holding{}, fmt.Errorf("open entry %s: %w", e.ID(), ErrHolderSignature)
	}
	return Holding{NodeID: nodeID, Category: category, RegisteredAt: time.Unix(reg, 0).UTC(), Withdrawn: e.Deleted}, nil
}

func parsePayload(p []byte) (nodeID, category string, reg int64, sig []byte, err error) {
	if len(p) < 1 || p[0] != payloadV1 {
		return "", "", 0, nil, errors.New("unknown payload format")
	}
	p = p[1:]
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return "", "", 0, nil, errors.New("truncated node id")
	}
	nodeID, p = string(p[1:1+int(p[0])]), p[1+int(p[0]):]
	if len(p) < 1 || len(p) < 1+int(p[0]) {
		return "", "", 0, nil, errors.New("truncated category")
	}
	category, p = string(p[1:1+int(p[0])]), p[1+int(p[0]):]
	if len(p) != 8+ed25519.SignatureSize {
		return "", "", 0, nil, errors.New("bad payload length")
	}
	return nodeID, category, int64(binary.BigEndian.Uint64(p[:8])), p[8:], nil
}

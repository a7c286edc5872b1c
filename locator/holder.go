package locator

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/signpost-federation/signpost/wasm/sealed"
)

// Limits of the sealed payload (package sealed owns the format).
const (
	MaxNodeIDLen   = sealed.MaxNodeIDLen
	MaxCategoryLen = sealed.MaxCategoryLen
)

// Holder is the publishing side of one node: it derives a per-entry Ed25519
// key for every lookup key from its secret, seals the node's identity under
// the seal key, and signs entries. A Holder is safe for concurrent use.
type Holder struct {
	nodeID  string
	nodeKey ed25519.PrivateKey
	secret  [32]byte
	rand    io.Reader
	// broker and brokerKey are set on a shielded holder (WithBroker).
	broker    string
	brokerKey ed25519.PublicKey
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

// WithBroker returns a copy of h that publishes shielded entries: each
// names broker (a member whose enrolled key is brokerKey) and carries the
// holder's identity sealed to it (package wasm/sealed, SealShielded). The
// entry keys are h's, so an entry published plainly and then shielded keeps
// its id and versions.
func (h *Holder) WithBroker(broker string, brokerKey ed25519.PublicKey) (*Holder, error) {
	if broker == "" || len(broker) > MaxNodeIDLen {
		return nil, fmt.Errorf("locator: broker node id of %d bytes (1..%d)", len(broker), MaxNodeIDLen)
	}
	if _, err := sealed.BrokerPublicKey(brokerKey); err != nil {
		return nil, fmt.Errorf("locator: %w", err)
	}
	c := *h
	c.broker, c.brokerKey = broker, brokerKey
	return &c, nil
}

// Broker returns the broker a shielded holder names, "" if it is not one.
func (h *Holder) Broker() string { return h.broker }

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
// with the token learns who withdrew; a shielded holder's names its broker. expires should be at least the expiry
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
	id := sealed.Identity{NodeID: h.nodeID, Category: category, RegisteredAt: registeredAt.Unix()}
	var s []byte
	var err error
	if h.broker != "" {
		s, err = sealed.SealShielded(h.rand, seal, lookup, e.EntryPub, h.nodeKey, id, h.broker, h.brokerKey)
	} else {
		s, err = sealed.Seal(h.rand, seal, lookup, e.EntryPub, h.nodeKey, id)
	}
	if err != nil {
		return nil, fmt.Errorf("locator: seal: %w", err)
	}
	e.Sealed = s
	signEntry(e, key)
	return e.seal(), nil
}

// payloadV1, appendIdentity and parsePayload name package sealed's format
// functions for this package's fuzz test (FuzzParsePayload).
const payloadV1 = sealed.PayloadV1

func appendIdentity(b []byte, nodeID, category string, reg int64) []byte {
	return sealed.AppendIdentity(b, sealed.Identity{NodeID: nodeID, Category: category, RegisteredAt: reg})
}

func parsePayload(p []byte) (nodeID, category string, reg int64, sig []byte, err error) {
	id, sig, err := sealed.ParsePayload(p)
	return id.NodeID, id.Category, id.RegisteredAt, sig, err
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
	// Broker is set, and NodeID and Category are empty, when the entry is
	// shielded: it names the broker node that speaks for a holder whose
	// identity only the broker can open (Inner; see package wasm/sealed).
	// A reader cannot check who the holder is.
	Broker string
	Inner  []byte
}

// Open decrypts the sealed part with seal and checks the holder's node
// signature against keys. It fails with ErrSealBroken (wrong key, tampered
// or garbled payload), ErrUnknownHolder (node id not in keys) or
// ErrHolderSignature; a caller must then drop the entry and count the reason
// (Store.NoteRejected), never show it. Open does not check the entry
// signature: only entries a Store accepted should be opened.
func (e *Entry) Open(seal SealKey, keys NodeKeys) (Holding, error) {
	// keys is consulted only once the sealed part opened.
	nodeKey := func(nodeID string) (ed25519.PublicKey, bool) { return keys.NodeKey(nodeID) }
	id, sh, err := sealed.OpenVerify(seal, e.Lookup, e.EntryPub, e.Sealed, nodeKey)
	if err != nil {
		return Holding{}, openError(e.ID(), err)
	}
	return Holding{NodeID: id.NodeID, Category: id.Category, RegisteredAt: time.Unix(id.RegisteredAt, 0).UTC(), Withdrawn: e.Deleted, Broker: sh.Broker, Inner: sh.Inner}, nil
}

// openError maps package sealed's failure to this package's sentinels,
// keeping the entry id as context.
func openError(id ID, err error) error {
	var se *sealed.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("open entry %s: %v: %w", id, err, ErrSealBroken)
	}
	var base error
	switch se.Reason {
	case sealed.ReasonUnknownHolder:
		base = ErrUnknownHolder
	case sealed.ReasonHolderSignature:
		base = ErrHolderSignature
	default:
		base = ErrSealBroken
	}
	if se.Detail != "" {
		return fmt.Errorf("open entry %s: %s: %w", id, se.Detail, base)
	}
	return fmt.Errorf("open entry %s: %w", id, base)
}

package federation

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// Authority is a federation authority: the Ed25519 key that signs node
// descriptors and revocation lists. It is an offline, operator-held role;
// nodes only ever see its public key.
type Authority struct {
	key ed25519.PrivateKey
}

// GenerateAuthority creates a new authority key from crypto/rand.
func GenerateAuthority() (*Authority, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("federation: generate authority key: %w", err)
	}
	return &Authority{key: priv}, nil
}

// NewAuthority wraps an existing Ed25519 private key.
func NewAuthority(key ed25519.PrivateKey) (*Authority, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("federation: authority key must be %d bytes", ed25519.PrivateKeySize)
	}
	return &Authority{key: key}, nil
}

// PublicKey returns the authority's public key, which every node is
// configured with.
func (a *Authority) PublicKey() ed25519.PublicKey {
	return a.key.Public().(ed25519.PublicKey)
}

// FederationID names the federation: the first 8 bytes of SHA-256 of the
// authority public key, in hex.
func FederationID(authority ed25519.PublicKey) string {
	h := sha256.Sum256(authority)
	return hex.EncodeToString(h[:8])
}

// GossipLabel is the memberlist label every packet and stream of the
// federation carries: "signpost/v1/<federation id>". Nodes of another
// federation (or another protocol) are refused before decryption.
func GossipLabel(authority ed25519.PublicKey) string {
	return "signpost/v1/" + FederationID(authority)
}

// Enrol signs d. It validates the fields and refuses descriptors whose
// encoding would not fit in memberlist node metadata.
func (a *Authority) Enrol(d Descriptor) (*SignedDescriptor, error) {
	d.NotBefore = d.NotBefore.Truncate(time.Second).UTC()
	d.Expires = d.Expires.Truncate(time.Second).UTC()
	d.Purposes = slices.Clone(d.Purposes)
	slices.Sort(d.Purposes)
	d.Purposes = slices.Compact(d.Purposes)
	d.PublicKey = slices.Clone(d.PublicKey)
	if err := d.Validate(); err != nil {
		return nil, err
	}
	body := d.encodeBody()
	if n := len(body) + ed25519.SignatureSize; n > MaxSignedDescriptorSize {
		return nil, fmt.Errorf("federation: descriptor of %d bytes exceeds %d; shorten agency or addresses", n, MaxSignedDescriptorSize)
	}
	return &SignedDescriptor{Descriptor: d, Signature: ed25519.Sign(a.key, descriptorSigned(body))}, nil
}

// SignRevocations signs a revocation list. Entries are sorted and
// deduplicated; an entry with serial 0 subsumes the node's other entries.
func (a *Authority) SignRevocations(version uint64, issuedAt time.Time, entries []Revocation) (*RevocationList, error) {
	es := slices.Clone(entries)
	for _, e := range es {
		if err := checkName("node id", e.NodeID, maxNodeIDLen); err != nil {
			return nil, fmt.Errorf("federation: revocation: %w", err)
		}
	}
	slices.SortFunc(es, compareRevocation)
	es = slices.Compact(es)
	if len(es) > maxRevocations {
		return nil, fmt.Errorf("federation: %d revocations exceed %d", len(es), maxRevocations)
	}
	l := &RevocationList{Version: version, IssuedAt: issuedAt.Truncate(time.Second).UTC(), Entries: es}
	l.Signature = ed25519.Sign(a.key, append([]byte(revocationContext), l.encodeBody()...))
	return l, nil
}

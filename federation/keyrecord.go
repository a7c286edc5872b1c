package federation

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/wasm"
)

const (
	keyRecordMagic   = "SPK1"
	keyRecordContext = "signpost/v1/key-record\x00"
	// MaxKeyRecordSize is the largest encoded key record a node decodes.
	MaxKeyRecordSize = len(keyRecordMagic) + 1 + 64 + 4 + 8 + 2 + 2 +
		dkg.MaxParticipants*(2+1+maxNodeIDLen+32) + 32 + 32 + 8 + 8 + ed25519.SignatureSize
	// maxKeyRecords bounds the records a node keeps and a records file holds.
	maxKeyRecords = 256
)

var (
	// ErrKeyRecordStale is returned by Agent.SetKeyRecord for a record
	// whose Serial is not above the one in force for its (purpose, epoch).
	ErrKeyRecordStale = errors.New("federation: key record not newer than current")
	// ErrKeyRecordInvalid is wrapped for a key record whose fields are not
	// a consistent threshold key (see KeyRecord.Verify).
	ErrKeyRecordInvalid = errors.New("federation: key record invalid")
)

// KeyIssuer is one issuer of a threshold key: the node holding the share at
// Shamir index Index, and its public share K_i = k_i·G (32 bytes,
// ristretto255).
type KeyIssuer struct {
	NodeID      string
	Index       uint16
	PublicShare []byte
}

// KeyRecord is the authority's signed statement of one (purpose, epoch)
// token key: who its issuers are, the threshold, each issuer's public share
// and the group key. It carries no secret. A node keeps, per (purpose,
// epoch), the verified record with the highest Serial; a reshare's record
// (same key, new issuers) therefore replaces the old one.
type KeyRecord struct {
	Purpose string
	Epoch   uint32
	// Serial orders records of one (purpose, epoch): higher is newer. The
	// authority directory assigns it from its serial counter.
	Serial uint64
	// T is the threshold: any T issuers evaluate, fewer cannot.
	T int
	// Issuers are sorted by Index; N is len(Issuers).
	Issuers []KeyIssuer
	// GroupKey is K = k·G, against which tokens verify.
	GroupKey []byte
	// Session is the DKG or reshare session that produced the key; every
	// holder's share file names it.
	Session dkg.SessionID
	// NotBefore is when nodes start using the key (one-second precision).
	NotBefore time.Time
	// RetireAt, if set, ends the key's use: after it the epoch is only
	// kept for lookups during a rotation's overlap window and then dropped
	// (one-second precision; zero means no end set).
	RetireAt time.Time
	// Signature is the authority's Ed25519 signature over the body.
	Signature []byte
}

// N is the number of issuers.
func (r *KeyRecord) N() int { return len(r.Issuers) }

// KeyRecordFromKeySet builds the unsigned record of a DKG's public result.
func KeyRecordFromKeySet(ks *dkg.KeySet) KeyRecord {
	r := KeyRecord{Purpose: ks.Purpose, Epoch: ks.Epoch, T: ks.T, GroupKey: bytes.Clone(ks.GroupKey), Session: ks.Session}
	for _, is := range ks.Issuers {
		r.Issuers = append(r.Issuers, KeyIssuer{NodeID: is.NodeID, Index: is.Index, PublicShare: bytes.Clone(is.Key)})
	}
	return r
}

// KeySet returns the record's public key data in the DKG's form (for a
// reshare's config, or a share's check).
func (r *KeyRecord) KeySet() dkg.KeySet {
	ks := dkg.KeySet{Session: r.Session, Purpose: r.Purpose, Epoch: r.Epoch, T: r.T, GroupKey: bytes.Clone(r.GroupKey)}
	for _, is := range r.Issuers {
		ks.Issuers = append(ks.Issuers, dkg.PublicShare{NodeID: is.NodeID, Index: is.Index, Key: bytes.Clone(is.PublicShare)})
	}
	return ks
}

// Issuer returns the issuer entry of nodeID.
func (r *KeyRecord) Issuer(nodeID string) (KeyIssuer, bool) {
	i := slices.IndexFunc(r.Issuers, func(is KeyIssuer) bool { return is.NodeID == nodeID })
	if i < 0 {
		return KeyIssuer{}, false
	}
	return r.Issuers[i], true
}

// check validates the fields: the purpose rule (wasm/purpose), 1 ≤ t ≤ n,
// unique node ids and indices, valid elements, public shares consistent
// with the group key (dkg.KeySet.Validate), a positive serial, and a
// retirement after the start.
func (r *KeyRecord) check() error {
	var errs []error
	ks := r.KeySet()
	if err := ks.Validate(); err != nil {
		errs = append(errs, err)
	}
	if r.Serial == 0 {
		errs = append(errs, errors.New("serial must be positive"))
	}
	if r.NotBefore.IsZero() {
		errs = append(errs, errors.New("not-before must be set"))
	}
	if !r.RetireAt.IsZero() && !r.RetireAt.After(r.NotBefore) {
		errs = append(errs, errors.New("retire-at must be after not-before"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrKeyRecordInvalid, errors.Join(errs...))
	}
	return nil
}

// encodeBody: "SPK1", str8 purpose, u32 epoch, u64 serial, u16 t, u16 n,
// per issuer u16 index, str8 node id and 32-byte public share, the 32-byte
// group key, the 32-byte session id, i64 not-before and i64 retire-at (Unix
// seconds; 0 for none).
func (r *KeyRecord) encodeBody() []byte {
	b := make([]byte, 0, 128+len(r.Issuers)*48)
	b = append(b, keyRecordMagic...)
	b = appendStr8(b, r.Purpose)
	b = binary.BigEndian.AppendUint32(b, r.Epoch)
	b = binary.BigEndian.AppendUint64(b, r.Serial)
	b = binary.BigEndian.AppendUint16(b, uint16(r.T))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Issuers)))
	for _, is := range r.Issuers {
		b = binary.BigEndian.AppendUint16(b, is.Index)
		b = appendStr8(b, is.NodeID)
		b = append(b, is.PublicShare...)
	}
	b = append(b, r.GroupKey...)
	b = append(b, r.Session[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.NotBefore.Unix()))
	var retire uint64
	if !r.RetireAt.IsZero() {
		retire = uint64(r.RetireAt.Unix())
	}
	return binary.BigEndian.AppendUint64(b, retire)
}

// Encode returns the canonical form: body then the 64-byte signature.
func (r *KeyRecord) Encode() []byte { return append(r.encodeBody(), r.Signature...) }

// SignKeyRecord validates r and signs it. Times are truncated to seconds
// and issuers sorted by index.
func (a *Authority) SignKeyRecord(r KeyRecord) (*KeyRecord, error) {
	r.Issuers = slices.Clone(r.Issuers)
	slices.SortFunc(r.Issuers, func(x, y KeyIssuer) int { return cmp.Compare(x.Index, y.Index) })
	r.NotBefore = r.NotBefore.Truncate(time.Second).UTC()
	if !r.RetireAt.IsZero() {
		r.RetireAt = r.RetireAt.Truncate(time.Second).UTC()
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	r.Signature = ed25519.Sign(a.key, append([]byte(keyRecordContext), r.encodeBody()...))
	return &r, nil
}

// DecodeSignedKeyRecord parses the canonical form. It checks structure only;
// call Verify before using the record.
func DecodeSignedKeyRecord(b []byte) (*KeyRecord, error) {
	if len(b) > MaxKeyRecordSize {
		return nil, fmt.Errorf("federation: key record of %d bytes exceeds %d", len(b), MaxKeyRecordSize)
	}
	rd := reader{b: b}
	if string(rd.next(len(keyRecordMagic))) != keyRecordMagic {
		return nil, errors.New("federation: not a key record (bad magic)")
	}
	r := &KeyRecord{Purpose: rd.str8(), Epoch: rd.u32(), Serial: rd.u64(), T: int(rd.u16())}
	n := int(rd.u16())
	if n > dkg.MaxParticipants {
		return nil, fmt.Errorf("federation: key record has %d issuers, max %d", n, dkg.MaxParticipants)
	}
	for range n {
		if rd.err != nil {
			break
		}
		is := KeyIssuer{Index: rd.u16(), NodeID: rd.str8()}
		is.PublicShare = bytes.Clone(rd.next(32))
		r.Issuers = append(r.Issuers, is)
	}
	r.GroupKey = bytes.Clone(rd.next(32))
	copy(r.Session[:], rd.next(32))
	r.NotBefore = unixTime(rd.u64())
	if v := rd.u64(); v != 0 {
		r.RetireAt = unixTime(v)
	}
	r.Signature = bytes.Clone(rd.next(ed25519.SignatureSize))
	if rd.err != nil {
		return nil, fmt.Errorf("federation: decode key record: %w", rd.err)
	}
	if len(rd.b) != 0 {
		return nil, fmt.Errorf("federation: decode key record: %d trailing bytes", len(rd.b))
	}
	if !bytes.Equal(r.Encode(), b) {
		return nil, errors.New("federation: decode key record: not in canonical form")
	}
	return r, nil
}

// Verify checks the authority's signature, then the fields (see check):
// a record that verifies names a consistent t-of-n key for a valid purpose.
func (r *KeyRecord) Verify(authority ed25519.PublicKey) error {
	if r == nil || len(authority) != ed25519.PublicKeySize || len(r.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(authority, append([]byte(keyRecordContext), r.encodeBody()...), r.Signature) {
		return fmt.Errorf("federation: key record: %w", ErrDescriptorForged)
	}
	return r.check()
}

// String summarises the record for operators: purpose, epoch, t of n, the
// issuers and serial. It contains no secret (there is none in a record).
func (r *KeyRecord) String() string {
	var ids []string
	for _, is := range r.Issuers {
		ids = append(ids, fmt.Sprintf("%s#%d", is.NodeID, is.Index))
	}
	return fmt.Sprintf("%s epoch %d: %d of %d (%s), serial %d", r.Purpose, r.Epoch, r.T, len(r.Issuers), strings.Join(ids, ", "), r.Serial)
}

// keyRecordID names a record's slot: one per (purpose, epoch).
type keyRecordID struct {
	purpose string
	epoch   uint32
}

func (r *KeyRecord) id() keyRecordID { return keyRecordID{r.Purpose, r.Epoch} }

func compareKeyRecords(a, b *KeyRecord) int {
	if c := strings.Compare(a.Purpose, b.Purpose); c != 0 {
		return c
	}
	return cmp.Compare(a.Epoch, b.Epoch)
}

func (r *reader) u16() uint16 {
	v := r.next(2)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

// WasmKeySet returns the record's key set in the token client's form
// (wasm.KeySet), which the node gives the threshold client and checks
// partial evaluations against.
func (r *KeyRecord) WasmKeySet() wasm.KeySet {
	ks := wasm.KeySet{Purpose: r.Purpose, Epoch: r.Epoch, T: r.T, GroupKey: bytes.Clone(r.GroupKey)}
	for _, is := range r.Issuers {
		ks.Shares = append(ks.Shares, wasm.PublicShare{Index: is.Index, NodeID: is.NodeID, Key: bytes.Clone(is.PublicShare)})
	}
	return ks
}

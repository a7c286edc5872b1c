package locator

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/sealed"
)

func TestEntryRoundTrip(t *testing.T) {
	keys := keyring{}
	h := testHolder(t, 1, keys)
	exp := t0.Add(365 * 24 * time.Hour)
	tests := []struct {
		name string
		e    *Entry
	}{
		{"live", mustPublish(t, h, 7, 1, exp)},
		{"tombstone", mustWithdraw(t, h, 7, 2, exp)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := tc.e.Encode()
			if len(enc) != tc.e.Size() {
				t.Fatalf("size %d, encoding %d", tc.e.Size(), len(enc))
			}
			d, err := DecodeEntry(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Encode(), enc) || d.ID() != tc.e.ID() || d.DigestHash() != tc.e.DigestHash() {
				t.Fatal("decode is not the identity")
			}
			if !d.VerifySignature() {
				t.Fatal("signature does not verify")
			}
			if d.ID() != h.EntryID(lookupN(7)) {
				t.Fatal("id differs from the holder's")
			}
			got, err := d.Open(sealN(7), keys)
			if err != nil {
				t.Fatal(err)
			}
			if got.NodeID != h.NodeID() || got.Withdrawn != tc.e.Deleted {
				t.Fatalf("opened %+v", got)
			}
			if !tc.e.Deleted && (got.Category != "childrens-social-care" || !got.RegisteredAt.Equal(t0)) {
				t.Fatalf("opened %+v", got)
			}
		})
	}
}

func TestEntryKeyStableAndUnlinkable(t *testing.T) {
	h1, h2 := testHolder(t, 1, nil), testHolder(t, 2, nil)
	again := testHolder(t, 1, nil)
	if h1.EntryPub(lookupN(1)) != again.EntryPub(lookupN(1)) {
		t.Fatal("entry key not stable")
	}
	if h1.EntryPub(lookupN(1)) == h1.EntryPub(lookupN(2)) || h1.EntryPub(lookupN(1)) == h2.EntryPub(lookupN(1)) {
		t.Fatal("entry keys collide across lookups or holders")
	}
}

func TestOpenFailures(t *testing.T) {
	keys := keyring{}
	h := testHolder(t, 1, keys)
	other := testHolder(t, 2, keyring{})
	exp := t0.Add(time.Hour)
	e := mustPublish(t, h, 3, 1, exp)

	// A holder claiming to be node 1 but signing with node 2's key.
	forged, err := NewHolder(h.NodeID(), other.nodeKey, other.secret)
	if err != nil {
		t.Fatal(err)
	}
	fe, err := forged.Publish(lookupN(3), sealN(3), "x", 1, t0, exp)
	if err != nil {
		t.Fatal(err)
	}
	// Sealed part moved to another entry key: the associated data differs.
	moved := *mustPublish(t, other, 3, 1, exp)
	moved.Sealed = e.Sealed
	tampered := *e
	tampered.Sealed = bytes.Clone(e.Sealed)
	tampered.Sealed[30] ^= 1

	tests := []struct {
		name string
		e    *Entry
		seal SealKey
		keys NodeKeys
		want error
	}{
		{"wrong seal key", e, sealN(4), keys, ErrSealBroken},
		{"tampered", &tampered, sealN(3), keys, ErrSealBroken},
		{"moved to another entry key", &moved, sealN(3), keys, ErrSealBroken},
		{"truncated sealed part", &Entry{Lookup: e.Lookup, EntryPub: e.EntryPub, Sealed: e.Sealed[:10]}, sealN(3), keys, ErrSealBroken},
		{"unknown holder", e, sealN(3), keyring{}, ErrUnknownHolder},
		{"holder signature", fe, sealN(3), keys, ErrHolderSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.e.Open(tc.seal, tc.keys)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	h := testHolder(t, 1, nil)
	enc := mustPublish(t, h, 1, 1, t0.Add(time.Hour)).Encode()
	badFormat := bytes.Clone(enc)
	badFormat[0] = 2
	badFlags := bytes.Clone(enc)
	badFlags[65] = 2
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"header only", enc[:headerSize-1], ErrTruncated},
		{"cut", enc[:len(enc)-1], ErrTruncated},
		{"trailing", append(bytes.Clone(enc), 0), ErrMalformed},
		{"format", badFormat, ErrMalformed},
		{"flags", badFlags, ErrMalformed},
		{"oversized", make([]byte, MaxEncodedSize+1), ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeEntry(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLookupOpenDropsAndCounts(t *testing.T) {
	keys := keyring{}
	good, unknown := testHolder(t, 1, keys), testHolder(t, 2, nil)
	// An impostor whose node id the membership knows under another key:
	// its entry opens, but the holder signature inside does not verify.
	impostor := testHolder(t, 4, nil)
	other := keyring{}
	testHolder(t, 5, other)
	keys[impostor.NodeID()] = other[nodeName(5)]
	// A holder that seals under a different seal key: stored (its entry
	// signature is fine) but cannot be opened with the token's seal key.
	wrongSeal := testHolder(t, 3, keys)
	exp := t0.Add(time.Hour)
	ws, err := wrongSeal.Publish(lookupN(1), sealN(99), "x", 1, t0, exp)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewMemStore(DefaultPolicy())
	for _, e := range []*Entry{mustPublish(t, good, 1, 1, exp), mustPublish(t, unknown, 1, 1, exp), ws, mustPublish(t, impostor, 1, 1, exp)} {
		if _, err := s.Apply(t0, e); err != nil {
			t.Fatal(err)
		}
	}
	found, rejected, err := LookupOpen(s, t0, lookupN(1), sealN(1), keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Holding.NodeID != good.NodeID() || rejected != 3 {
		t.Fatalf("found %d, rejected %d", len(found), rejected)
	}
	c := s.Counters()
	if c.Rejected[ReasonUnknownHolder] != 1 || c.Rejected[ReasonSealBroken] != 1 || c.Rejected[ReasonHolderSignature] != 1 {
		t.Fatalf("counters %+v", c.Rejected)
	}
}

// TestShieldedHolder: a holder with a broker publishes entries that open to
// the broker's name only, under the same entry id and key as its plain
// entries; the broker (and nobody else) opens the holder inside.
func TestShieldedHolder(t *testing.T) {
	keys := keyring{}
	h := testHolder(t, 1, keys)
	broker := testHolder(t, 2, keys)
	sh, err := h.WithBroker(broker.NodeID(), keys[broker.NodeID()])
	if err != nil {
		t.Fatal(err)
	}
	if h.Broker() != "" || sh.Broker() != broker.NodeID() {
		t.Fatalf("brokers %q, %q", h.Broker(), sh.Broker())
	}
	exp := t0.Add(time.Hour)
	for _, e := range []*Entry{mustPublish(t, sh, 4, 2, exp), mustWithdraw(t, sh, 4, 3, exp)} {
		if e.ID() != h.EntryID(lookupN(4)) || !e.VerifySignature() {
			t.Fatal("shielded entry has another id or a bad signature")
		}
		got, err := e.Open(sealN(4), keys)
		if err != nil {
			t.Fatal(err)
		}
		if got.NodeID != "" || got.Category != "" || got.Broker != broker.NodeID() || got.Withdrawn != e.Deleted {
			t.Fatalf("opened %+v", got)
		}
		id, err := sealed.OpenShield(broker.nodeKey, broker.NodeID(), e.Lookup, e.EntryPub, got.Inner, keys.NodeKey)
		if err != nil || id.NodeID != h.NodeID() {
			t.Fatalf("broker opened %+v, %v", id, err)
		}
		if _, err := sealed.OpenShield(h.nodeKey, broker.NodeID(), e.Lookup, e.EntryPub, got.Inner, keys.NodeKey); !errors.Is(err, sealed.ErrNotBroker) {
			t.Fatalf("the holder's own key opened the blob: %v", err)
		}
	}
	if _, err := h.WithBroker("", keys[broker.NodeID()]); err == nil {
		t.Fatal("empty broker accepted")
	}
	if _, err := h.WithBroker("b", make([]byte, 3)); err == nil {
		t.Fatal("short broker key accepted")
	}
}

package wasm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/sealed"
)

// openCase builds canonical entry encodings around sealed parts made by
// package sealed (what locator.Holder produces; locator's tests check the
// entry layout against locator.DecodeEntry).
type openCase struct {
	seal    [32]byte
	members []Member
	nodeKey ed25519.PrivateKey
}

// memberKey returns the public key of member id (nil if none).
func (c openCase) memberKey(id string) ed25519.PublicKey {
	for _, m := range c.members {
		if m.NodeID == id {
			return m.PublicKey
		}
	}
	return nil
}

func newOpenCase() openCase {
	c := openCase{nodeKey: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))}
	c.seal[0] = 0x22
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, 32))
	c.members = []Member{
		{NodeID: "node-school", PublicKey: c.nodeKey.Public().(ed25519.PublicKey)},
		{NodeID: "node-gp", PublicKey: other.Public().(ed25519.PublicKey)},
	}
	return c
}

func (c openCase) entry(t testing.TB, nodeID string, key ed25519.PrivateKey, seal [32]byte, deleted bool, n byte) []byte {
	t.Helper()
	return c.entryVia(t, nodeID, key, seal, deleted, n, "")
}

// entryVia is entry shielded by broker (a member; "" for a plain entry).
func (c openCase) entryVia(t testing.TB, nodeID string, key ed25519.PrivateKey, seal [32]byte, deleted bool, n byte, broker string) []byte {
	t.Helper()
	var lookup [16]byte
	var pub [32]byte
	lookup[0], pub[0], pub[1] = 0x11, n, 0x33
	cat, reg := "education", int64(1756684800)
	if deleted {
		cat, reg = "", 0
	}
	nonce := bytes.NewReader(bytes.Repeat([]byte{n}, 24))
	id := sealed.Identity{NodeID: nodeID, Category: cat, RegisteredAt: reg}
	var s []byte
	var err error
	if broker != "" {
		s, err = sealed.SealShielded(nonce, seal, lookup, pub, key, id, broker, c.memberKey(broker))
	} else {
		s, err = sealed.Seal(nonce, seal, lookup, pub, key, id)
	}
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte{1}, lookup[:]...)
	b = append(b, pub[:]...)
	b = binary.BigEndian.AppendUint64(b, 1)
	b = binary.BigEndian.AppendUint64(b, 1767225600)
	if deleted {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	b = append(b, s...)
	return append(b, make([]byte, 64)...)
}

// TestOpenEntriesAgreesWithNative opens a batch in the module and with
// package sealed natively: same identities, same reasons.
func TestOpenEntriesAgreesWithNative(t *testing.T) {
	c := newOpenCase()
	wrongSeal := c.seal
	wrongSeal[5] = 1
	forger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	tests := []struct {
		name      string
		entry     []byte
		want      error
		withdrawn bool
		broker    string
	}{
		{"good entry", c.entry(t, "node-school", c.nodeKey, c.seal, false, 1), nil, false, ""},
		{"wrong seal key", c.entry(t, "node-school", c.nodeKey, wrongSeal, false, 2), ErrSealBroken, false, ""},
		{"unknown holder", c.entry(t, "node-police", c.nodeKey, c.seal, false, 3), ErrUnknownHolder, false, ""},
		{"forged holder signature", c.entry(t, "node-school", forger, c.seal, false, 4), ErrHolderSignature, false, ""},
		{"tombstone", c.entry(t, "node-school", c.nodeKey, c.seal, true, 5), nil, true, ""},
		{"not an entry", []byte("c2VhbGVk"), ErrEntryMalformed, false, ""},
		{"shielded", c.entryVia(t, "node-clinic", c.nodeKey, c.seal, false, 6, "node-gp"), nil, false, "node-gp"},
		{"shielded tombstone", c.entryVia(t, "node-clinic", c.nodeKey, c.seal, true, 7, "node-gp"), nil, true, "node-gp"},
		{"shielded, wrong seal key", c.entryVia(t, "node-clinic", c.nodeKey, wrongSeal, false, 8, "node-gp"), ErrSealBroken, false, ""},
	}
	entries := make([][]byte, len(tests))
	for i, tt := range tests {
		entries[i] = tt.entry
	}
	r := newTestRuntime(t, Config{Instances: 1})
	got, err := r.OpenEntries(context.Background(), c.seal, entries, c.members)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(id string) (ed25519.PublicKey, bool) {
		for _, m := range c.members {
			if m.NodeID == id {
				return m.PublicKey, true
			}
		}
		return nil, false
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := got[i]
			if !errors.Is(o.Err, tt.want) || (tt.want == nil) != (o.Err == nil) {
				t.Fatalf("module: %v, want %v", o.Err, tt.want)
			}
			n, nerr := sealed.OpenEntry(c.seal, tt.entry, keys)
			if (nerr == nil) != (o.Err == nil) || (nerr != nil && !errors.Is(nerr, o.Err)) {
				t.Fatalf("native %v, module %v", nerr, o.Err)
			}
			if o.Err != nil {
				if o.NodeID != "" || o.Broker != "" || o.Inner != nil || o.Category != "" || o.Withdrawn || !o.RegisteredAt.IsZero() {
					t.Fatalf("failed entry carries data: %+v", o)
				}
				return
			}
			if o.NodeID != n.NodeID || o.Category != n.Category || o.RegisteredAt.Unix() != n.RegisteredAt || o.Withdrawn != n.Withdrawn || o.Withdrawn != tt.withdrawn || o.Broker != n.Shield.Broker || o.Broker != tt.broker || !bytes.Equal(o.Inner, n.Shield.Inner) {
				t.Fatalf("module %+v, native %+v", o, n)
			}
			if tt.broker != "" {
				if o.NodeID != "" || o.Category != "" {
					t.Fatalf("shielded entry opened as %+v", o)
				}
				return
			}
			if !tt.withdrawn && (o.NodeID != "node-school" || o.Category != "education" || !o.RegisteredAt.Equal(time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC))) {
				t.Fatalf("opened %+v", o)
			}
		})
	}
}

func TestOpenEntriesBadCalls(t *testing.T) {
	c := newOpenCase()
	r := newTestRuntime(t, Config{Instances: 1})
	ctx := context.Background()
	good := c.entry(t, "node-school", c.nodeKey, c.seal, false, 1)
	tests := []struct {
		name    string
		entries [][]byte
		members []Member
		want    error
	}{
		{"too many entries", make([][]byte, 4097), c.members, ErrBatchSize},
		{"short member key", [][]byte{good}, []Member{{NodeID: "node-school", PublicKey: make([]byte, 3)}}, nil},
		{"empty member id", [][]byte{good}, []Member{{PublicKey: make([]byte, 32)}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.OpenEntries(ctx, c.seal, tt.entries, tt.members)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// The instance still works, and an empty batch is fine.
	if got, err := r.OpenEntries(ctx, c.seal, [][]byte{good}, c.members); err != nil || got[0].Err != nil {
		t.Fatalf("after bad calls: %v %+v", err, got)
	}
	if got, err := r.OpenEntries(ctx, c.seal, nil, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty batch: %v %v", err, got)
	}
}

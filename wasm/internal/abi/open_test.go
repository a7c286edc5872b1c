package abi

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"testing"

	"github.com/signpost-federation/signpost/wasm/sealed"
)

// openFixture is one sealed entry of node-a and the member list that
// verifies it.
type openFixture struct {
	key     [32]byte
	entry   []byte
	members []byte
}

func newOpenFixture(t testing.TB, deleted bool) openFixture {
	t.Helper()
	var f openFixture
	f.key[0] = 9
	var lookup [16]byte
	var pub [32]byte
	lookup[0], pub[0] = 1, 2
	nodeKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	s, err := sealed.Seal(bytes.NewReader(make([]byte, 24)), f.key, lookup, pub, nodeKey, sealed.Identity{NodeID: "node-a", Category: "school", RegisteredAt: 1767225600})
	if err != nil {
		t.Fatal(err)
	}
	f.entry = testEntry(lookup, pub, deleted, s)
	f.members = AppendList(nil, []byte("node-a"), nodeKey.Public().(ed25519.PublicKey))
	return f
}

// testEntry lays out a canonical locator entry (outer signature zero: the
// op does not check it).
func testEntry(lookup [16]byte, pub [32]byte, deleted bool, s []byte) []byte {
	b := append([]byte{1}, lookup[:]...)
	b = append(b, pub[:]...)
	b = binary.BigEndian.AppendUint64(b, 1)
	b = binary.BigEndian.AppendUint64(b, 2)
	if deleted {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	b = append(b, s...)
	return append(b, make([]byte, 64)...)
}

func TestOpenEntriesStatuses(t *testing.T) {
	f := newOpenFixture(t, false)
	dead := newOpenFixture(t, true)
	wrongKey := f.key
	wrongKey[0]++
	other := AppendList(nil, []byte("node-b"), make([]byte, 32))
	forged := AppendList(nil, []byte("node-a"), ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey))
	tests := []struct {
		name    string
		key     [32]byte
		members []byte
		entry   []byte
		status  byte
		flags   string
	}{
		{"good", f.key, f.members, f.entry, EntryOK, ""},
		{"tombstone", dead.key, dead.members, dead.entry, EntryOK, "1"},
		{"wrong seal key", wrongKey, f.members, f.entry, EntrySealBroken, ""},
		{"unknown holder", f.key, other, f.entry, EntryUnknownHolder, ""},
		{"holder signature", f.key, forged, f.entry, EntryHolderSignature, ""},
		{"garbage", f.key, f.members, []byte("c2VhbGVk"), EntryMalformed, ""},
	}
	h := Handler{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.Handle(OpOpenEntries, AppendList(nil, tt.key[:], tt.members, tt.entry))
			if resp[0] != StatusOK {
				t.Fatalf("status %d: %s", resp[0], resp[1:])
			}
			items, err := DecodeList(resp[1:])
			if err != nil || len(items) != 5 {
				t.Fatalf("%d items, %v", len(items), err)
			}
			if len(items[0]) != 1 || items[0][0] != tt.status {
				t.Fatalf("entry status %v, want %d", items[0], tt.status)
			}
			if tt.status != EntryOK {
				for _, it := range items[1:] {
					if len(it) != 0 {
						t.Fatal("a failed entry carries data")
					}
				}
				return
			}
			if string(items[1]) != "node-a" || string(items[2]) != "school" && tt.flags == "" || binary.BigEndian.Uint64(items[3]) != 1767225600 || string(items[4]) != tt.flags {
				t.Fatalf("items %q", items)
			}
		})
	}
}

func TestOpenEntriesRejectsCalls(t *testing.T) {
	f := newOpenFixture(t, false)
	many := [][]byte{f.key[:], f.members}
	for range MaxEntries + 1 {
		many = append(many, nil)
	}
	tests := []struct {
		name string
		req  []byte
		want byte
	}{
		{"no members", AppendList(nil, f.key[:]), StatusMalformed},
		{"short seal key", AppendList(nil, f.key[:31], f.members), StatusMalformed},
		{"members not a list", AppendList(nil, f.key[:], []byte{9}), StatusMalformed},
		{"odd members", AppendList(nil, f.key[:], AppendList(nil, []byte("a"))), StatusMalformed},
		{"short member key", AppendList(nil, f.key[:], AppendList(nil, []byte("a"), []byte("k"))), StatusMalformed},
		{"empty node id", AppendList(nil, f.key[:], AppendList(nil, nil, make([]byte, 32))), StatusMalformed},
		{"too many entries", AppendList(nil, many...), StatusBatchSize},
		{"no entries", AppendList(nil, f.key[:], f.members), StatusOK},
	}
	h := Handler{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.Handle(OpOpenEntries, tt.req)
			if resp[0] != tt.want {
				t.Fatalf("status %d (%s), want %d", resp[0], resp[1:], tt.want)
			}
			if bytes.Contains(resp, f.key[:]) {
				t.Fatal("response echoes the seal key")
			}
		})
	}
}

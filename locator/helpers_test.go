package locator

import (
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// keyring is a NodeKeys for tests.
type keyring map[string]ed25519.PublicKey

func (k keyring) NodeKey(id string) (ed25519.PublicKey, bool) {
	p, ok := k[id]
	return p, ok
}

// seededReader is a deterministic byte stream for nonces.
type seededReader struct{ r *rand.Rand }

func (s seededReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}

// testHolder returns holder i with deterministic keys and nonces, and
// registers its node key in keys.
func testHolder(t testing.TB, i int, keys keyring) *Holder {
	t.Helper()
	var seed [32]byte
	seed[0], seed[1] = byte(i), byte(i>>8)
	nodeKey := ed25519.NewKeyFromSeed(seed[:])
	var secret [32]byte
	secret[0], secret[1], secret[31] = byte(i), byte(i>>8), 0x5a
	id := nodeName(i)
	h, err := NewHolder(id, nodeKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	h.SetNonceSource(seededReader{rand.New(rand.NewPCG(uint64(i), 7))})
	if keys != nil {
		keys[id] = nodeKey.Public().(ed25519.PublicKey)
	}
	return h
}

func nodeName(i int) string {
	return "node-" + string(rune('a'+i%26)) + string(rune('a'+(i/26)%26))
}

func lookupN(i int) LookupKey {
	var k LookupKey
	k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
	k[15] = 0x11
	return k
}

func sealN(i int) SealKey {
	var k SealKey
	k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
	k[31] = 0x22
	return k
}

func mustPublish(t testing.TB, h *Holder, i int, version uint64, expires time.Time) *Entry {
	t.Helper()
	e, err := h.Publish(lookupN(i), sealN(i), "childrens-social-care", version, t0, expires)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustWithdraw(t testing.TB, h *Holder, i int, version uint64, expires time.Time) *Entry {
	t.Helper()
	e, err := h.Withdraw(lookupN(i), sealN(i), version, expires)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// wire returns e as a peer would deliver it after mutate changed it: its
// fields copied into a fresh Entry (none of e's cached id or encoding),
// mutated, encoded and decoded.
func wire(t testing.TB, e *Entry, mutate func(*Entry)) *Entry {
	t.Helper()
	m := Entry{Lookup: e.Lookup, EntryPub: e.EntryPub, Version: e.Version, Expires: e.Expires,
		Deleted: e.Deleted, Sealed: append([]byte(nil), e.Sealed...), Sig: e.Sig}
	mutate(&m)
	d, err := DecodeEntry(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestMain fails the run if a goroutine outlives the tests (the store's
// concurrency tests start writers and readers).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

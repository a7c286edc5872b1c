package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/federation/protocol/protocoltest"
	"github.com/signpost-federation/signpost/locator"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type seededReader struct{ r *rand.Rand }

func (s seededReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}

func testHolder(t testing.TB, i int) *locator.Holder {
	t.Helper()
	var seed, secret [32]byte
	seed[0], seed[1] = byte(i), byte(i>>8)
	secret[0], secret[1], secret[31] = byte(i), byte(i>>8), 0x5a
	h, err := locator.NewHolder(fmt.Sprintf("node-%03d", i), ed25519.NewKeyFromSeed(seed[:]), secret)
	if err != nil {
		t.Fatal(err)
	}
	h.SetNonceSource(seededReader{rand.New(rand.NewPCG(uint64(i), 7))})
	return h
}

func lookupN(i int) locator.LookupKey {
	var k locator.LookupKey
	k[0], k[1], k[2], k[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
	k[15] = 0x11
	return k
}

func sealN(i int) locator.SealKey {
	var k locator.SealKey
	k[0], k[1], k[2], k[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
	return k
}

func publish(t testing.TB, h *locator.Holder, i int, version uint64) *locator.Entry {
	t.Helper()
	e, err := h.Publish(lookupN(i), sealN(i), "school", version, t0, t0.Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newNet builds n nodes on fresh MemStores.
func newNet(t testing.TB, seed uint64, n int, pol locator.Policy, cfg protocol.Config) *protocoltest.Network {
	t.Helper()
	net := protocoltest.New(seed, t0)
	for i := range n {
		s, err := locator.NewMemStore(pol)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := net.Add(protocol.PeerID(fmt.Sprintf("p%02d", i)), s, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return net
}

// contents returns the concatenated encodings of a store, in id order.
func contents(t testing.TB, s locator.Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Range(func(e *locator.Entry) bool { b.Write(e.Encode()); return true }); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// identical reports whether every replica holds byte-identical contents and
// digests.
func identical(t testing.TB, net *protocoltest.Network) bool {
	t.Helper()
	nodes := net.Nodes()
	want := contents(t, nodes[0].Store)
	root := nodes[0].Store.Bucket(0, 0)
	for _, n := range nodes[1:] {
		if n.Store.Bucket(0, 0) != root || !bytes.Equal(contents(t, n.Store), want) {
			return false
		}
	}
	return true
}

// converged is a cheap check: every root digest equal.
func converged(net *protocoltest.Network) func() bool {
	return func() bool {
		nodes := net.Nodes()
		root := nodes[0].Store.Bucket(0, 0)
		for _, n := range nodes[1:] {
			if n.Store.Bucket(0, 0) != root {
				return false
			}
		}
		return true
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

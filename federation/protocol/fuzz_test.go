package protocol_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

func seedMessages(t testing.TB) [][]byte {
	h := testHolder(t, 1)
	e := publish(t, h, 1, 1)
	var id, hi locator.ID
	for i := range hi {
		hi[i] = 0xff
	}
	ms := []*protocol.Message{
		{Kind: protocol.KindEntries, Session: 7, Hops: 1, Entries: [][]byte{e.Encode()}},
		{Kind: protocol.KindEntries, Session: 7, Hops: protocol.AEHops, Entries: [][]byte{e.Encode()[:50]}},
		{Kind: protocol.KindHave, Hops: 2, Stamps: []locator.Stamp{locator.StampOf(e)}},
		{Kind: protocol.KindWant, Session: 9, Hops: protocol.AEHops, IDs: []locator.ID{e.ID(), id}},
		{Kind: protocol.KindNodes, Session: 9, Depth: 2, Level: 0, Nodes: []protocol.Node{{Index: 0, Bucket: locator.Bucket{Count: 3}}}},
		{Kind: protocol.KindNodes, Session: 9, Depth: 2, Level: 1, Nodes: []protocol.Node{{Index: 15}}},
		{Kind: protocol.KindStamps, Session: 9, Depth: 2, Level: 0, From: id, To: hi, Stamps: []locator.Stamp{locator.StampOf(e)}},
		{Kind: protocol.KindStamps, Session: 9, Depth: 2, Level: 0, From: id, To: hi},
	}
	var out [][]byte
	for _, m := range ms {
		out = append(out, m.Encode())
	}
	return out
}

// FuzzDecodeMessage: the decoder never panics and what it accepts
// re-encodes to the same bytes.
func FuzzDecodeMessage(f *testing.F) {
	for _, b := range seedMessages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := protocol.DecodeMessage(b, 64<<10)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatalf("re-encoding of %s differs", m.Kind)
		}
	})
}

// FuzzHandleMessage: an engine fed arbitrary bytes from a peer never
// panics, and its store only ever holds validly signed entries.
func FuzzHandleMessage(f *testing.F) {
	for _, b := range seedMessages(f) {
		f.Add(b)
	}
	h := testHolder(f, 2)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := locator.NewMemStore(locator.Policy{DigestDepth: 2})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = s.Apply(t0, publish(t, h, 5, 1))
		cfg := protocol.DefaultConfig()
		cfg.Self = "me"
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
		g, err := protocol.New(cfg, s, sink{}, peers{"you"})
		if err != nil {
			t.Fatal(err)
		}
		_ = g.HandleMessage(t0, "you", b)
		_ = s.Range(func(e *locator.Entry) bool {
			if !e.VerifySignature() {
				t.Fatal("unsigned entry stored")
			}
			return true
		})
	})
}

type sink struct{}

func (sink) Send(protocol.PeerID, []byte) error { return nil }

type peers []protocol.PeerID

func (p peers) Peers() []protocol.PeerID { return p }

package protocoltest

import (
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

func twoNodes(t *testing.T, seed uint64) *Network {
	t.Helper()
	n := New(seed, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, id := range []protocol.PeerID{"a", "b"} {
		s, err := locator.NewMemStore(locator.Policy{DigestDepth: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Add(id, s, protocol.DefaultConfig()); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func TestNetworkFaults(t *testing.T) {
	tests := []struct {
		name          string
		loss, dup     float64
		cut           bool
		wantDelivered func(sent uint64) bool
	}{
		{"clean", 0, 0, false, func(s uint64) bool { return true }},
		{"all lost", 1, 0, false, func(s uint64) bool { return false }},
		{"all duplicated", 0, 1, false, func(s uint64) bool { return true }},
		{"cut", 0, 0, true, func(s uint64) bool { return false }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := twoNodes(t, 1)
			n.Loss, n.Dup = tc.loss, tc.dup
			if tc.cut {
				n.Cut = func(from, to protocol.PeerID) bool { return true }
			}
			a := (*transport)(n.nodes[0])
			for range 10 {
				if err := a.Send("b", []byte{0}); err != nil {
					t.Fatal(err)
				}
			}
			if n.MsgsSent != 10 || n.BytesSent != 10 {
				t.Fatalf("sent %d msgs %d bytes", n.MsgsSent, n.BytesSent)
			}
			n.Drain()
			want := uint64(0)
			if tc.wantDelivered(10) {
				want = 10
				if tc.dup == 1 {
					want = 20
				}
			}
			if n.MsgsDelivered != want {
				t.Fatalf("delivered %d, want %d", n.MsgsDelivered, want)
			}
			// The one-byte messages are garbage to the engine.
			if n.HandleErrors != want {
				t.Fatalf("handle errors %d, want %d", n.HandleErrors, want)
			}
		})
	}
}

func TestNetworkDeterministic(t *testing.T) {
	run := func() (uint64, time.Time) {
		n := twoNodes(t, 7)
		n.Loss, n.Dup = 0.2, 0.2
		n.RunFor(time.Minute)
		return n.BytesSent, n.Now
	}
	b1, t1 := run()
	b2, t2 := run()
	if b1 != b2 || !t1.Equal(t2) || b1 == 0 {
		t.Fatalf("runs differ: %d/%v vs %d/%v", b1, t1, b2, t2)
	}
}

package protocol_test

import (
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

func TestPushSpreadsNewEntry(t *testing.T) {
	const seed = 1
	cfg := protocol.DefaultConfig()
	cfg.AntiEntropyInterval = time.Hour // push alone
	net := newNet(t, seed, 8, locator.Policy{DigestDepth: 2}, cfg)
	h := testHolder(t, 1)
	src := net.Nodes()[0]
	net.RunFor(time.Second)
	for i := range 20 {
		if _, err := src.Engine.Publish(net.Now, publish(t, h, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if !net.RunUntil(5*time.Second, converged(net)) {
		for _, n := range net.Nodes() {
			t.Logf("%s: %d entries", n.ID, n.Store.Len())
		}
		t.Fatalf("seed %d: not converged", seed)
	}
	if !identical(t, net) {
		t.Fatalf("seed %d: replicas differ", seed)
	}
	if net.HandleErrors != 0 {
		t.Fatalf("%d handle errors", net.HandleErrors)
	}
}

func TestAntiEntropyRepairsPartition(t *testing.T) {
	const seed = 2
	cfg := protocol.DefaultConfig()
	cfg.AntiEntropyInterval = time.Second
	net := newNet(t, seed, 6, locator.Policy{DigestDepth: 2}, cfg)
	// Each node publishes its own entries while fully cut off.
	net.Cut = func(from, to protocol.PeerID) bool { return true }
	for i, n := range net.Nodes() {
		h := testHolder(t, i)
		for j := range 50 {
			if _, err := n.Engine.Publish(net.Now, publish(t, h, 1000*i+j, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	net.RunFor(10 * time.Second)
	net.Cut = nil
	if !net.RunUntil(2*time.Minute, converged(net)) {
		t.Fatalf("seed %d: not converged", seed)
	}
	if !identical(t, net) || net.Nodes()[0].Store.Len() != 300 {
		t.Fatalf("seed %d: replicas differ", seed)
	}
}

package protocol_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/federation/protocol/protocoltest"
	"github.com/signpost-federation/signpost/locator"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestRestartWithBoltReplicas: nodes on bolt stores keep publishing while
// one of them goes down, is restarted from its file, and another loses its
// disk entirely; anti-entropy brings every replica to the same bytes.
func TestRestartWithBoltReplicas(t *testing.T) {
	seed := testutil.Seed(t)
	dir := t.TempDir()
	pol := locator.Policy{DigestDepth: 2}
	cfg := protocol.DefaultConfig()
	cfg.AntiEntropyInterval = time.Second
	net := protocoltest.New(seed, t0)
	net.Loss = 0.1
	open := func(i int, name string) locator.Store {
		s, err := locator.OpenBoltStore(filepath.Join(dir, name), pol)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	for i := range 4 {
		if _, err := net.Add(protocol.PeerID(fmt.Sprintf("b%d", i)), open(i, fmt.Sprintf("n%d.db", i)), cfg); err != nil {
			t.Fatal(err)
		}
	}
	nodes := net.Nodes()
	h := testHolder(t, 1)
	pub := func(node *protocoltest.Node, from, to int) {
		for i := from; i < to; i++ {
			if _, err := node.Engine.Publish(net.Now, publish(t, h, i, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	pub(nodes[0], 0, 30)
	net.RunFor(3 * time.Second)

	// b1 goes down, misses writes, and comes back from its file.
	nodes[1].Down = true
	before := nodes[1].Store.Len()
	if err := nodes[1].Store.Close(); err != nil {
		t.Fatal(err)
	}
	pub(nodes[2], 30, 60)
	net.RunFor(3 * time.Second)
	s1 := open(1, "n1.db")
	if s1.Len() != before {
		t.Fatalf("restart kept %d of %d entries", s1.Len(), before)
	}
	if _, err := net.Restart(nodes[1].ID, s1, cfg); err != nil {
		t.Fatal(err)
	}
	// b3 loses its disk.
	if _, err := net.Restart(nodes[3].ID, open(3, "n3-new.db"), cfg); err != nil {
		t.Fatal(err)
	}
	pub(nodes[1], 60, 70)
	net.Loss = 0
	if !net.RunUntil(5*time.Minute, converged(net)) {
		t.Fatalf("seed %d: no convergence after restarts", seed)
	}
	if !identical(t, net) || nodes[0].Store.Len() != 70 {
		t.Fatalf("seed %d: replicas differ (%d entries at b0)", seed, nodes[0].Store.Len())
	}
}

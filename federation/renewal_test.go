package federation

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestRenewalReplacesDescriptor: a node restarted with a renewed
// descriptor (same key, higher serial, later expiry) is known by the new
// one on every node, and its entries stay readable.
func TestRenewalReplacesDescriptor(t *testing.T) {
	f := newTestFed(t)
	agents := f.cluster(t, 3, true)
	old := agents[2]
	e, seal := testEntry(t, holderOf(t, old.cfg.Credentials))
	publish(t, old, e)
	testutil.Eventually(t, convergeTimeout, func() error { return missing(agents, e.ID()) })

	d := old.Self()
	d.Expires = d.Expires.Add(48 * time.Hour)
	f.serial++
	d.Serial = f.serial
	renewed, err := f.auth.Enrol(d)
	if err != nil {
		t.Fatal(err)
	}
	creds := &Credentials{Descriptor: renewed, PrivateKey: old.cfg.Credentials.PrivateKey}
	cfg := f.config(creds, old.cfg.DataDir)
	if err := old.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	back := startAgent(t, cfg)
	if _, err := back.Join([]string{agents[0].GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	all := []*Agent{agents[0], agents[1], back}
	waitMembers(t, all...)
	testutil.Eventually(t, convergeTimeout, func() error {
		for _, a := range all[:2] {
			if got, ok := a.Descriptor(d.NodeID); !ok || got.Serial != d.Serial {
				return fmt.Errorf("%s knows serial %d, want %d", a.Self().NodeID, got.Serial, d.Serial)
			}
		}
		return nil
	})
	for _, a := range all {
		got, _, _ := a.Store().Get(e.ID())
		if _, err := got.Open(seal, a); err != nil {
			t.Fatalf("%s: %v", a.Self().NodeID, err)
		}
	}
}

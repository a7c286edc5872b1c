package federation

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRevocationsPersist: a list adopted with SetRevocations is kept in the
// data directory and in force after a restart, and a node the persisted
// list revokes cannot start.
func TestRevocationsPersist(t *testing.T) {
	f := newTestFed(t)
	dir := t.TempDir()
	creds := f.creds(t, "node-0")
	a, err := NewAgent(f.config(creds, dir))
	if err != nil {
		t.Fatal(err)
	}
	rl2, _ := f.auth.SignRevocations(2, time.Now(), []Revocation{{NodeID: "node-9"}})
	if err := a.SetRevocations(rl2); err != nil {
		t.Fatal(err)
	}
	forged, _ := newTestFed(t).auth.SignRevocations(3, time.Now(), nil)
	if err := a.SetRevocations(forged); !errors.Is(err, ErrDescriptorForged) {
		t.Fatalf("another authority's list: %v", err)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	a, err = NewAgent(f.config(creds, dir))
	if err != nil {
		t.Fatal(err)
	}
	if r := a.Revocations(); r == nil || r.Version != 2 || !r.Revoked("node-9", 1) {
		t.Fatalf("after restart: %+v", r)
	}
	rl3, _ := f.auth.SignRevocations(3, time.Now(), []Revocation{{NodeID: "node-0"}, {NodeID: "node-9"}})
	if err := a.SetRevocations(rl3); err != nil {
		t.Fatal(err)
	}
	a.Shutdown(context.Background())
	if _, err := NewAgent(f.config(creds, dir)); !errors.Is(err, ErrDescriptorRevoked) {
		t.Fatalf("revoked node started: %v", err)
	}
}

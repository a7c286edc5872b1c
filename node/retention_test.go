package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/internal/records"
)

// clockedReplica is a locator replica and this node's holder on a test
// clock: it refuses entries past their expiry as every replica does.
func clockedReplica(t *testing.T, clock *testClock) (*locator.MemStore, *adapter.LocatorIndex) {
	t.Helper()
	store, err := locator.NewMemStore(locator.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	var secret [32]byte
	rand.Read(secret[:])
	h, err := locator.NewHolder("a", priv, secret)
	if err != nil {
		t.Fatal(err)
	}
	return store, adapter.NewLocatorIndex(h, store, nil, adapter.StaticNodeKeys{"a": pub}, clock.Now)
}

func mustImport(t *testing.T, n *testNode, csv string, want int) {
	t.Helper()
	rep, err := n.Import(context.Background(), strings.NewReader(csv), "op", nil)
	if err != nil || rep.Imported != want {
		t.Fatalf("import: %v %+v", err, rep)
	}
}

func mustHold(t *testing.T, n *testNode, id string, held bool) {
	t.Helper()
	_, err := n.records.Get(id)
	switch {
	case held && err != nil:
		t.Fatalf("record %s: %v", id, err)
	case !held && !errors.Is(err, records.ErrNotFound):
		t.Fatalf("record %s is still held past its retention end (%v)", id, err)
	}
}

// A node restarted after a record's retention end deletes the record and
// becomes ready; before, Republish failed on the expired entry for ever.
func TestRestartWithRecordPastRetention(t *testing.T) {
	clock := newTestClock() // 2026-11-25 09:00 UTC
	store, index := clockedReplica(t, clock)
	aud := &countingAudit{}
	dir := t.TempDir()
	start := func() *testNode {
		return nodeWith(t, Options{Index: index, Now: clock.Now, Audit: aud}, func(c *Config) { c.DataDir = dir })
	}
	a := start()
	mustImport(t, a, "keep,9990000018,,2030-01-01\nold,9990000026,,2026-11-26\n", 2)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	clock.Advance(48 * time.Hour)
	if _, err := store.Expire(clock.Now()); err != nil { // as the federation's replicas do
		t.Fatal(err)
	}
	b := start()
	if r := b.do(t, "GET", "/readyz", "", ""); r.status != 200 {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	mustHold(t, b, "old", false)
	mustHold(t, b, "keep", true)
	var found int
	for _, e := range aud.all() {
		if e.Action != "retention-delete" {
			continue
		}
		found++
		if e.LocalID != "old" || e.Outcome != "ok" || e.Count != 1 || strings.Contains(fmt.Sprintf("%+v", e), "999") {
			t.Errorf("audit event %+v", e)
		}
	}
	if found != 1 {
		t.Fatalf("%d retention-delete events, want 1", found)
	}
}

// The publisher skips a queued record whose retention has ended (before
// the sweep has removed it): its entry would be refused as expired, and the
// item is done, not retried for ever.
func TestPublisherSkipsRecordsPastRetention(t *testing.T) {
	clock := newTestClock()
	store, index := clockedReplica(t, clock)
	a := manualNode(t, Options{Index: index, Now: clock.Now}, nil)
	a.tok.setFail(ErrIssuerUnavailable)
	rep, err := a.Import(context.Background(), strings.NewReader("keep,9990000018,,2030-01-01\nsoon,9990000026,,2026-11-25T10:00:00Z\n"), "op", nil)
	if err != nil || rep.Imported != 2 || rep.Queued != 2 {
		t.Fatalf("import while the issuer is down: %v %+v", err, rep)
	}
	a.tok.setFail(nil)
	clock.Advance(2 * time.Hour)
	a.pub.step(context.Background())
	if a.records.OutboxLen() != 0 || store.Len() != len(a.cfg.Purposes) {
		t.Fatalf("%d items left, %d entries in the replica; want none and keep's %d", a.records.OutboxLen(), store.Len(), len(a.cfg.Purposes))
	}
	mustHold(t, a, "soon", true) // the sweep, not the publisher, deletes it
}

// The background sweep deletes a record when its retention ends, while the
// node runs: it withdraws the entries (the node knows their keys from
// publishing them) and audits the deletion with the subject's keys.
func TestRetentionSweepWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fed := newFakeFed()
		aud := &countingAudit{}
		a := bareNode(t, Options{Index: fed.index("a", "Agency a"), Audit: aud}, nil)
		defer a.Shutdown(context.Background()) // inside the bubble: ends the sweep loop
		end := time.Now().Add(90 * time.Minute).UTC().Format(time.RFC3339)
		mustImport(t, a, "soon,9990000018,,"+end+"\nlater,9990000026\n", 2)
		purposes := len(a.cfg.Purposes)

		// time.Sleep moves the bubble's fake clock; nothing really waits.
		time.Sleep(89 * time.Minute)
		synctest.Wait()
		mustHold(t, a, "soon", true)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		mustHold(t, a, "soon", false)
		mustHold(t, a, "later", true)
		if live, dead := fed.published(), fed.withdrawn(); live != purposes || dead != purposes {
			t.Fatalf("%d live and %d withdrawn entries, want %d of each", live, dead, purposes)
		}
		var ev []AuditEvent
		for _, e := range aud.all() {
			if e.Action == "retention-delete" {
				ev = append(ev, e)
			}
		}
		if len(ev) != 1 || ev[0].LocalID != "soon" || len(ev[0].Subject) != purposes {
			t.Fatalf("retention-delete events %+v", ev)
		}
		own, err := a.records.OwnedLookups()
		if left := len(own); err != nil || left != purposes {
			t.Fatalf("node still tracks %d own keys, want %d", left, purposes)
		}
	})
}

// TestRetryWithDefaultRetention: a record sent without retainUntil gets
// the default retention from the moment it is created. Sending the same
// record again later — a client's retry after a timeout, the same CSV
// imported again the next day — is the same record, not a conflict, and
// leaves it as it was; a retry that names a different retainUntil is
// still a conflict.
func TestRetryWithDefaultRetention(t *testing.T) {
	clock := newTestClock()
	_, index := clockedReplica(t, clock)
	a := nodeWith(t, Options{Index: index, Now: clock.Now}, nil)
	body := `{"localId":"r1","nhsNumber":"9990000018","category":"cin"}`
	if r := a.do(t, "POST", "/v1/records", "op-token", body); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	first, err := a.records.Get("r1")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour + 1500*time.Millisecond)
	if r := a.do(t, "POST", "/v1/records", "op-token", body); r.status != 200 {
		t.Fatalf("a retry an hour later: %d %s, want 200 (the same record)", r.status, r.body)
	}
	clock.Advance(24 * time.Hour)
	rep, err := a.Import(context.Background(), strings.NewReader("r1,9990000018,cin,\n"), "op", nil)
	if err != nil || len(rep.Errors) != 0 {
		t.Fatalf("the same row imported a day later: %v %+v", err, rep)
	}
	if again, err := a.records.Get("r1"); err != nil || !again.RetainUntil.Equal(first.RetainUntil) || again.Version != first.Version {
		t.Fatalf("the retries changed the record: %+v (was %+v), %v", again, first, err)
	}
	if r := a.do(t, "POST", "/v1/records", "op-token", `{"localId":"r1","nhsNumber":"9990000018","category":"cin","retainUntil":"2031-01-01"}`); r.status != 409 || r.errCode() != "exists" {
		t.Fatalf("a different retainUntil: %d %s, want 409 exists", r.status, r.body)
	}
}

package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/signpost-federation/signpost/node/internal/records"
)

// locateFrom answers whether node b finds agency a's record for nhs.
func holdersSeen(t *testing.T, b *testNode, nhs string) []string {
	t.Helper()
	r := b.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"`+nhs+`","purpose":"safeguarding"}`)
	if r.status != 200 {
		t.Fatalf("locate at %s: %d %s", b.cfg.NodeID, r.status, r.body)
	}
	var res LocateResult
	mustJSON(t, r.body, &res)
	var ids []string
	for _, h := range res.Holders {
		ids = append(ids, h.NodeID)
	}
	return ids
}

func readiness(t *testing.T, n *testNode) Readiness {
	t.Helper()
	r := n.do(t, "GET", "/readyz", "", "")
	if r.status != 200 {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	var rd Readiness
	mustJSON(t, r.body, &rd)
	return rd
}

// A write made while the issuer cannot be reached is stored and queued
// (202, "published": false); /readyz stays ready and says what is
// degraded; once the issuer is back the publisher publishes it, another
// agency finds it, and the audit names the subject then.
func TestWriteWhileIssuerDownIsQueued(t *testing.T) {
	fed := newFakeFed()
	clock := newTestClock()
	aud := &countingAudit{}
	a := manualNode(t, Options{Index: fed.index("a", "Agency a"), Now: clock.Now, Audit: aud}, nil)
	b := newTestNode(t, fed, "b", nil)

	a.tok.setFail(fmt.Errorf("%w: 2 of 3 issuers not answering", ErrIssuerUnavailable))
	r := a.do(t, "POST", "/v1/records", "op-token", `{"localId":"c1","nhsNumber":"`+nhsA+`"}`)
	var ans recordAnswer
	mustJSON(t, r.body, &ans)
	if r.status != 202 || ans.Published || ans.Queued != 1 || ans.LocalID != "c1" {
		t.Fatalf("write while the issuer is down: %d %s, want 202 published false queued 1", r.status, r.body)
	}
	if a.count(t) != 1 || fed.published() != 0 {
		t.Fatalf("%d records, %d entries; want the record stored and nothing published", a.count(t), fed.published())
	}
	rd := readiness(t, a)
	if !rd.Ready || rd.Outbox != 1 || len(rd.Degraded) != 1 || rd.Degraded[0] != DegradedIssuer {
		t.Fatalf("readyz while the issuer is down: %+v", rd)
	}
	clock.Advance(90 * time.Second)
	if rd := readiness(t, a); rd.OutboxOldestSeconds != 90 {
		t.Fatalf("oldest item %ds, want 90", rd.OutboxOldestSeconds)
	}
	m := a.do(t, "GET", "/metrics", "", "").body
	for _, want := range []string{MetricOutbox + " 1", MetricOutboxAge + " 90", MetricPubFailures + " 1"} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Still down: the publisher tries, fails, keeps the item.
	a.pub.step(context.Background())
	if a.records.OutboxLen() != 1 {
		t.Fatal("a failed attempt lost the item")
	}

	a.tok.setFail(nil)
	clock.Advance(publishRetryMax)
	a.pub.step(context.Background())
	if a.records.OutboxLen() != 0 || fed.published() != len(a.cfg.Purposes) {
		t.Fatalf("after the issuer came back: %d queued, %d entries", a.records.OutboxLen(), fed.published())
	}
	if got := holdersSeen(t, b, nhsA); len(got) != 1 || got[0] != "a" {
		t.Fatalf("b finds %v, want [a]", got)
	}
	if rd := readiness(t, a); len(rd.Degraded) != 0 || rd.Outbox != 0 {
		t.Fatalf("readyz once published: %+v", rd)
	}
	var outcomes []string
	for _, e := range aud.all() {
		if e.Action == "record-create" {
			outcomes = append(outcomes, fmt.Sprintf("%s/%d", e.Outcome, len(e.Subject)))
		}
	}
	if want := []string{"queued/0", fmt.Sprintf("ok/%d", len(a.cfg.Purposes))}; fmt.Sprint(outcomes) != fmt.Sprint(want) {
		t.Fatalf("record-create audit events %v, want %v (the subject named once published)", outcomes, want)
	}

	// A record whose keys the node knows is withdrawn without the issuer.
	a.tok.setFail(ErrIssuerUnavailable)
	if r := a.do(t, "DELETE", "/v1/records/c1", "op-token", ""); r.status != 204 {
		t.Fatalf("delete of a published record while the issuer is down: %d %s, want 204", r.status, r.body)
	}
	if got := holdersSeen(t, b, nhsA); len(got) != 0 {
		t.Fatalf("b still finds %v after the withdrawal", got)
	}
	// One never published is withdrawn once the issuer is back (its keys
	// are unknown; a tombstone is harmless).
	if r := a.do(t, "POST", "/v1/records", "op-token", `{"localId":"c2","nhsNumber":"`+nhsB+`"}`); r.status != 202 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = a.do(t, "DELETE", "/v1/records/c2", "op-token", "")
	mustJSON(t, r.body, &ans)
	if r.status != 202 || ans.Queued != 1 || a.records.OutboxLen() != 2 {
		t.Fatalf("delete of a queued record: %d %s, %d queued", r.status, r.body, a.records.OutboxLen())
	}
	a.tok.setFail(nil)
	clock.Advance(publishRetryMax)
	a.pub.step(context.Background())
	if a.records.OutboxLen() != 0 || fed.published() != 0 {
		t.Fatalf("%d queued, %d live entries; want none", a.records.OutboxLen(), fed.published())
	}
}

// While the issuer cannot be reached the publisher backs off exponentially
// up to publishRetryMax, on the node's clock, and makes no attempt before
// the back-off has passed.
func TestPublisherBacksOff(t *testing.T) {
	clock := newTestClock()
	a := manualNode(t, Options{Now: clock.Now}, nil)
	a.tok.setFail(ErrIssuerUnavailable)
	if r := a.do(t, "POST", "/v1/records", "op-token", `{"localId":"c1","nhsNumber":"`+nhsA+`"}`); r.status != 202 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	want := publishRetryMin
	for i := range 10 {
		calls := a.tok.callCount()
		if got := a.pub.step(ctx); got != want {
			t.Fatalf("attempt %d: back-off %v, want %v", i, got, want)
		}
		if a.tok.callCount() == calls {
			t.Fatalf("attempt %d made no call", i)
		}
		calls = a.tok.callCount()
		clock.Advance(want - time.Millisecond)
		if got := a.pub.step(ctx); got != time.Millisecond || a.tok.callCount() != calls {
			t.Fatalf("attempt %d: a step before the back-off passed waited %v and made %d calls", i, got, a.tok.callCount()-calls)
		}
		clock.Advance(time.Millisecond)
		want = min(want*2, publishRetryMax)
	}
	if want != publishRetryMax {
		t.Fatalf("back-off never reached its cap: %v", want)
	}
	a.tok.setFail(nil)
	// Idle, it looks for new token keys every keyCheckInterval.
	if got := a.pub.step(ctx); got != keyCheckInterval || a.records.OutboxLen() != 0 {
		t.Fatalf("after success: wait %v, %d queued", got, a.records.OutboxLen())
	}
}

// Items queued before a restart (a shutdown, or the store simply closed as
// a kill -9 leaves it) are published after it; nothing acknowledged is
// lost.
func TestRestartPublishesPendingItems(t *testing.T) {
	fed := newFakeFed()
	dir := t.TempDir()
	cfg := func(c *Config) { c.DataDir = dir }
	a := manualNode(t, Options{Index: fed.index("a", "Agency a")}, cfg)
	a.tok.setFail(ErrIssuerUnavailable)
	nums := syntheticNumbers(5)
	for i, num := range nums {
		if r := a.do(t, "POST", "/v1/records", "op-token", fmt.Sprintf(`{"localId":"r%d","nhsNumber":"%s"}`, i, num)); r.status != 202 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	if r := a.do(t, "POST", "/v1/records/r0/objection", "op-token", ""); r.status != 202 {
		t.Fatalf("objection: %d %s", r.status, r.body)
	}
	// As a kill -9 leaves it: the store closed under the running node.
	a.srv.Close()
	if err := a.records.Close(); err != nil {
		t.Fatal(err)
	}
	a.Shutdown(context.Background())

	b := manualNode(t, Options{Index: fed.index("a", "Agency a")}, cfg)
	if rd := readiness(t, b); !rd.Ready || rd.Outbox != 6 {
		t.Fatalf("after restart: %+v, want ready with 6 queued", rd)
	}
	b.pub.step(context.Background())
	if b.records.OutboxLen() != 0 || fed.published() != 4*len(b.cfg.Purposes) {
		t.Fatalf("%d queued, %d entries; want the 4 unobjected records published", b.records.OutboxLen(), fed.published())
	}
}

// failingIndex publishes, then reports failure for the numbers it is told
// to: a crash between publishing and removing the item, as far as the
// outbox can tell.
type failingIndex struct {
	Index
	mu    sync.Mutex
	fails int
}

func (x *failingIndex) Publish(ctx context.Context, k Keys, category string, version uint64, registered, expires time.Time) error {
	if err := x.Index.Publish(ctx, k, category, version, registered, expires); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.fails > 0 {
		x.fails--
		return errors.New("connection lost")
	}
	return nil
}

// A failure between publishing and removing the item leaves the item; the
// next attempt publishes the same version again (harmless) and removes it.
// Reopening the store mid-way loses nothing.
func TestCrashBetweenPublishAndComplete(t *testing.T) {
	fed := newFakeFed()
	dir := t.TempDir()
	idx := &failingIndex{Index: fed.index("a", "Agency a"), fails: 1}
	a := manualNode(t, Options{Index: idx}, func(c *Config) { c.DataDir = dir })
	r := a.do(t, "POST", "/v1/records", "op-token", `{"localId":"c1","nhsNumber":"`+nhsA+`"}`)
	if r.status != 202 || a.records.OutboxLen() != 1 || fed.published() != 1 {
		t.Fatalf("got %d %s, %d queued, %d entries; want 202, the item kept, one entry out", r.status, r.body, a.records.OutboxLen(), fed.published())
	}
	a.srv.Close()
	a.Shutdown(context.Background())
	b := manualNode(t, Options{Index: idx}, func(c *Config) { c.DataDir = dir })
	b.pub.step(context.Background())
	if b.records.OutboxLen() != 0 || fed.published() != len(b.cfg.Purposes) {
		t.Fatalf("%d queued, %d entries", b.records.OutboxLen(), fed.published())
	}
	p, ok, err := b.records.PublishedState("c1")
	if err != nil || !ok || p.Version != 1 || len(p.Keys) != len(b.cfg.Purposes) || p.Epoch != b.keyGeneration() {
		t.Fatalf("published state %+v %v %v", p.Version, ok, err)
	}
}

// A node restarted with every record published tokenises nothing, and is
// ready before its first step; a store from before the outbox (records,
// no published state) is queued in the background and published.
func TestStartTokenisesNothingWhenAllPublished(t *testing.T) {
	fed := newFakeFed()
	dir := t.TempDir()
	cfg := func(c *Config) { c.DataDir = dir }
	a := manualNode(t, Options{Index: fed.index("a", "Agency a")}, cfg)
	mustImport(t, a, goodRows(300), 300)
	if a.records.OutboxLen() != 0 {
		t.Fatalf("%d items left after an import with the issuer up", a.records.OutboxLen())
	}
	a.srv.Close()
	a.Shutdown(context.Background())

	b := manualNode(t, Options{Index: fed.index("a", "Agency a")}, cfg)
	if !readiness(t, b).Ready {
		t.Fatal("not ready at start")
	}
	b.pub.step(context.Background())
	if calls := b.tok.callCount(); calls != 0 {
		t.Fatalf("start with every record published made %d tokenizer calls", calls)
	}
	b.srv.Close()
	b.Shutdown(context.Background())

	// New token keys (epoch 2 for every purpose): every record is queued
	// in the background and published under them.
	newKeys := soloKeyring("a")
	newKeys.epoch = 2
	c := manualNode(t, Options{Index: fed.index("a", "Agency a"), Keyring: newKeys}, cfg)
	if !readiness(t, c).Ready || c.records.OutboxLen() != 0 {
		t.Fatal("a new epoch held up readiness")
	}
	for c.pub.backfill {
		c.pub.step(context.Background())
	}
	c.pub.step(context.Background())
	if c.tok.callCount() == 0 || c.records.OutboxLen() != 0 {
		t.Fatalf("new epoch: %d calls, %d queued", c.tok.callCount(), c.records.OutboxLen())
	}
	n := 0
	err := c.records.ForEachPublished(func(_ string, p records.Published) error {
		if p.Epoch == c.keyGeneration() {
			n++
		}
		return nil
	})
	if err != nil || n != 300 {
		t.Fatalf("%d records published under epoch 2, want 300 (%v)", n, err)
	}
}

// With an entry lifetime, entries due to expire before their record's
// retention end are published again (a new version) when due, found
// through the due index; nothing else is touched.
func TestEntriesDueAreRefreshed(t *testing.T) {
	clock := newTestClock()
	store, index := clockedReplica(t, clock)
	a := manualNode(t, Options{Index: index, Now: clock.Now}, func(c *Config) { c.EntryLifetime = DurationOf(48 * time.Hour) })
	mustImport(t, a, "r1,9990000018,,2030-01-01\nr2,9990000026,,2030-01-01\n", 2)
	clock.Advance(24 * time.Hour)
	mustImport(t, a, "r3,9990000034,,2030-01-01\n", 1)
	before := a.tok.callCount()

	clock.Advance(12*time.Hour - time.Second) // r1, r2 due at 36h
	a.pub.step(context.Background())
	if a.tok.callCount() != before {
		t.Fatal("refreshed before due")
	}
	clock.Advance(time.Second)
	a.pub.step(context.Background())
	if a.tok.callCount() == before || a.records.OutboxLen() != 0 {
		t.Fatalf("nothing refreshed when due (%d queued)", a.records.OutboxLen())
	}
	for id, want := range map[string]uint64{"r1": 2, "r2": 2, "r3": 1} {
		p, ok, err := a.records.PublishedState(id)
		if err != nil || !ok || p.Version != want {
			t.Fatalf("%s: published version %d (%v %v), want %d", id, p.Version, ok, err, want)
		}
		if id != "r3" && !p.Expires.Equal(clock.Now().Add(48*time.Hour)) {
			t.Fatalf("%s expires %v, want %v", id, p.Expires, clock.Now().Add(48*time.Hour))
		}
	}
	// Past the first expiry, the refreshed entries are still live.
	clock.Advance(13 * time.Hour)
	if _, err := store.Expire(clock.Now()); err != nil {
		t.Fatal(err)
	}
	if store.Len() != 3*len(a.cfg.Purposes) {
		t.Fatalf("%d entries live, want %d", store.Len(), 3*len(a.cfg.Purposes))
	}
}

// Start is ready at once, whatever the issuer does, and /readyz's body
// is the documented shape.
func TestReadyzBody(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", nil)
	r := a.do(t, "GET", "/readyz", "", "")
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, k := range []string{"status", "ready", "degraded", "outbox", "outboxOldestSeconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("readyz lacks %q: %s", k, r.body)
		}
	}
	// A locate that finds the issuer unreachable marks the node degraded,
	// not unready.
	a.tok.setFail(ErrIssuerUnavailable)
	if r := a.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"`+nhsA+`","purpose":"safeguarding"}`); r.status != 503 {
		t.Fatalf("locate: %d %s", r.status, r.body)
	}
	if rd := readiness(t, a); !rd.Ready || len(rd.Degraded) != 1 {
		t.Fatalf("%+v", rd)
	}
}

// The background publisher runs from Start to Shutdown: a queued write
// goes out once the issuer is back, after the back-off, without a test
// step; Shutdown ends it (the leak check of TestMain would catch it).
func TestPublisherLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fed := newFakeFed()
		a := bareNode(t, Options{Index: fed.index("a", "Agency a")}, nil)
		a.tok.setFail(ErrIssuerUnavailable)
		rep, err := a.Import(context.Background(), strings.NewReader("r1,"+nhsA+"\n"), "op", nil)
		if err != nil || rep.Queued != 1 {
			t.Fatalf("%v %+v", err, rep)
		}
		synctest.Wait() // the publisher tried too, and backs off
		a.tok.setFail(nil)
		time.Sleep(publishRetryMin) // the bubble's clock: nothing really waits
		synctest.Wait()
		if a.records.OutboxLen() != 0 || fed.published() != len(a.cfg.Purposes) {
			t.Fatalf("%d queued, %d entries", a.records.OutboxLen(), fed.published())
		}

		// A long outage: the publisher backs off to seconds. A write that
		// publishes (the issuer is back) wakes it: the backlog goes out
		// with no time passing.
		a.tok.setFail(ErrIssuerUnavailable)
		if rep, err := a.Import(context.Background(), strings.NewReader("r2,"+nhsB+"\n"), "op", nil); err != nil || rep.Queued != 1 {
			t.Fatalf("%v %+v", err, rep)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		a.tok.setFail(nil)
		if rep, err := a.Import(context.Background(), strings.NewReader("r3,9990000034\n"), "op", nil); err != nil || rep.Published != 1 {
			t.Fatalf("%v %+v", err, rep)
		}
		synctest.Wait()
		if a.records.OutboxLen() != 0 || fed.published() != 3*len(a.cfg.Purposes) {
			t.Fatalf("the backlog waited for the back-off: %d queued, %d entries", a.records.OutboxLen(), fed.published())
		}
		if err := a.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); !errors.Is(err, ErrClosed) {
			t.Fatalf("start after shutdown: %v", err)
		}
	})
}

// Many single writes consolidate the node's watches over its own keys
// (all but the largest merged) without losing one: another agency's new
// entry under any of them is a "match".
func TestOwnKeyWatchesConsolidate(t *testing.T) {
	fed := newFakeFed()
	aud := &countingAudit{}
	a := manualNode(t, Options{Index: fed.index("a", "Agency a"), Audit: aud}, nil)
	b := newTestNode(t, fed, "b", nil)
	nums := syntheticNumbers(2 * maxMineWatches)
	for i, num := range nums {
		if r := a.do(t, "POST", "/v1/records", "op-token", fmt.Sprintf(`{"localId":"r%d","nhsNumber":"%s"}`, i, num)); r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	a.mu.Lock()
	watches := len(a.mineWatches)
	a.mu.Unlock()
	if watches > maxMineWatches {
		t.Fatalf("%d watches over own keys, want at most %d", watches, maxMineWatches)
	}
	for _, i := range []int{0, maxMineWatches, len(nums) - 1} {
		if r := b.do(t, "POST", "/v1/records", "op-token", fmt.Sprintf(`{"localId":"b%d","nhsNumber":"%s"}`, i, nums[i])); r.status != 201 {
			t.Fatalf("create at b: %d %s", r.status, r.body)
		}
	}
	matches := map[string]int{}
	for _, e := range aud.all() {
		if e.Action == "match" {
			matches[e.LocalID]++
		}
	}
	want := map[string]int{"r0": 2, fmt.Sprintf("r%d", maxMineWatches): 2, fmt.Sprintf("r%d", len(nums)-1): 2}
	if fmt.Sprint(matches) != fmt.Sprint(want) {
		t.Fatalf("match events %v, want %v (one per purpose)", matches, want)
	}
}

// refusingIndex refuses, for good, every entry under one lookup key.
type refusingIndex struct {
	Index
	bad [16]byte
}

func (x *refusingIndex) Publish(ctx context.Context, k Keys, category string, version uint64, registered, expires time.Time) error {
	if k.Lookup == x.bad {
		return errors.New("entry refused")
	}
	return x.Index.Publish(ctx, k, category, version, registered, expires)
}

// batchRefusingIndex is refusingIndex as a BatchIndex: PublishBatch
// answers each publication as Publish would, and counts its calls.
type batchRefusingIndex struct {
	*refusingIndex
	calls, pubs int
}

func (x *batchRefusingIndex) PublishBatch(ctx context.Context, pubs []Publication) []error {
	x.calls++
	x.pubs += len(pubs)
	errs := make([]error, len(pubs))
	for i, p := range pubs {
		errs[i] = x.Publish(ctx, p.Keys, p.Category, p.Version, p.Registered, p.Expires)
	}
	return errs
}

// An item the federation refuses for good stays queued and is retried
// after a back-off; it holds up no other record, in its batch or after it:
// with an Index that publishes one entry at a time and with a BatchIndex
// (whose batch is all of a step's publications, in one call).
func TestRefusedItemHoldsUpNothingElse(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			fed := newFakeFed()
			clock := newTestClock()
			nums := syntheticNumbers(9)
			bad, err := (&fakeTokenizer{}).Keys(context.Background(), nil, "safeguarding", nums[:1])
			if err != nil {
				t.Fatal(err)
			}
			refusing := &refusingIndex{Index: fed.index("a", "Agency a"), bad: bad[0].Lookup}
			var idx Index = refusing
			bidx := &batchRefusingIndex{refusingIndex: refusing}
			if batched {
				idx = bidx
			}
			a := manualNode(t, Options{Index: idx, Now: clock.Now}, func(c *Config) { c.MaxBatch = 4 })
			a.tok.setFail(ErrIssuerUnavailable)
			for i, num := range nums {
				if r := a.do(t, "POST", "/v1/records", "op-token", fmt.Sprintf(`{"localId":"r%d","nhsNumber":"%s"}`, i, num)); r.status != 202 {
					t.Fatalf("create: %d %s", r.status, r.body)
				}
			}
			a.tok.setFail(nil)
			clock.Advance(publishRetryMax)
			if wait := a.pub.step(context.Background()); wait != publishRetryMin {
				t.Fatalf("waits %v after a refused item, want the back-off %v", wait, publishRetryMin)
			}
			// r0's publication waits; the 8 others are out, each under both
			// purposes (r0's item was first in the first batch). One at a
			// time, r0 stops at its refused entry; in a batch, its other
			// purpose's entry goes out with the rest (the item still waits,
			// and its retry skips what the index holds).
			want := 8 * 2
			if batched {
				want++
			}
			if a.records.OutboxLen() != 1 || fed.published() != want {
				t.Fatalf("%d queued, %d entries; want r0's item queued and %d entries", a.records.OutboxLen(), fed.published(), want)
			}
			items, _ := a.records.Pending(0, 10)
			for _, it := range items {
				if it.LocalID != "r0" {
					t.Fatalf("item %v queued", it)
				}
			}
			if batched && (bidx.pubs != 9*2 || bidx.calls == 0 || bidx.calls > 3) {
				t.Fatalf("%d publications in %d PublishBatch calls; want 18 in one per step's batch of 4", bidx.pubs, bidx.calls)
			}
			if !batched && bidx.calls != 0 {
				t.Fatal("PublishBatch called on an Index without it")
			}
		})
	}
}

// A store an older node left (records, no outbox, nothing known to be
// published) is ready at once after the upgrade, tokenises nothing before
// ready, and is published in the background; its records can then be
// withdrawn without the issuer.
func TestUpgradeFromStoreWithoutOutbox(t *testing.T) {
	dir := t.TempDir()
	s, err := openRecordsIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	retain := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	var rs []records.Record
	for i, num := range syntheticNumbers(3) {
		rs = append(rs, records.Record{LocalID: fmt.Sprintf("old-%d", i), NHSNumber: num, Category: "cin", RetainUntil: retain, Created: retain.Add(-time.Hour)})
	}
	res, err := s.PutBatch(rs, records.Note{})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, r := range res {
		seqs = append(seqs, r.Seq)
	}
	if err := s.Complete(seqs, nil, nil); err != nil { // as an old node left it
		t.Fatal(err)
	}
	s.Close()

	fed := newFakeFed()
	a := manualNode(t, Options{Index: fed.index("a", "Agency a")}, func(c *Config) { c.DataDir = dir })
	if !readiness(t, a).Ready || a.tok.callCount() != 0 || !a.pub.backfill {
		t.Fatalf("after the upgrade: ready %v, %d tokenizer calls, backfill %v", readiness(t, a).Ready, a.tok.callCount(), a.pub.backfill)
	}
	for a.pub.backfill {
		a.pub.step(context.Background())
	}
	a.pub.step(context.Background())
	if fed.published() != 3*len(a.cfg.Purposes) || a.records.OutboxLen() != 0 {
		t.Fatalf("%d entries, %d queued; want every record published", fed.published(), a.records.OutboxLen())
	}
	a.tok.setFail(ErrIssuerUnavailable)
	if r := a.do(t, "DELETE", "/v1/records/old-1", "op-token", ""); r.status != 204 || fed.published() != 2*len(a.cfg.Purposes) {
		t.Fatalf("delete: %d %s, %d entries", r.status, r.body, fed.published())
	}
}

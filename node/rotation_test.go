package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/internal/leakscan"
	"github.com/signpost-federation/signpost/node/internal/records"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

// rotate deals a new (purpose, epoch) key among issuers and adds it to
// every node's keyring beside the keys it has (both are then in force).
func rotate(t *testing.T, ns map[string]*testNode, purpose string, epoch uint32, threshold int, issuers ...string) {
	t.Helper()
	d, err := wasmtest.Deal(rand.Reader, purpose, epoch, threshold, issuers...)
	if err != nil {
		t.Fatal(err)
	}
	leaks.NoteKey(leakscan.KindIssuer, d.Key, "")
	for _, s := range d.Shares {
		leaks.NoteKey(leakscan.KindIssuer, s, "")
	}
	for id, n := range ns {
		kr := n.opt.Keyring.(*adapter.Keyring)
		if err := kr.SetKeys(append(kr.All(), adapter.PortKeySet(d.KeySet))); err != nil {
			t.Fatal(err)
		}
		if i := slices.Index(issuers, id); i >= 0 {
			kr.AddShare(purpose, epoch, d.Issuers[i])
		}
	}
}

// TestRotationOverlapLookups: while two keys of a purpose are in force,
// locate asks under both and merges (an entry published under the old key
// only and one under the new key only are both found, an agency once), the
// evaluate answer lists both epochs for the page, and a contact request
// that names the number reaches a holder known only under the old key.
func TestRotationOverlapLookups(t *testing.T) {
	ns, _ := wasmNodes(t, map[string][]string{
		"csc": {"safeguarding"}, "gp": {"safeguarding"}, "ed": {"safeguarding"}, "school": {"safeguarding"},
	}, 2, "csc", "gp", "ed")
	locate := func(node string) LocateResult {
		t.Helper()
		r := ns[node].do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`)
		var res LocateResult
		if err := json.Unmarshal([]byte(r.body), &res); err != nil || r.status != 200 {
			t.Fatalf("locate at %s: %d %s", node, r.status, r.body)
		}
		return res
	}
	for _, c := range []struct{ node, id string }{{"csc", "c1"}, {"ed", "e1"}} {
		if r := ns[c.node].do(t, "POST", "/v1/records", "op-token", `{"localId":"`+c.id+`","nhsNumber":"999 000 0018"}`); r.status != 201 {
			t.Fatalf("%s create: %d %s", c.node, r.status, r.body)
		}
	}
	before := locate("school")
	if len(before.LookupKeys) != 1 || before.LookupKeys[0].Epoch != 1 || before.LookupKey != before.LookupKeys[0].LookupKey {
		t.Fatalf("one key in force: %+v", before.LookupKeys)
	}

	rotate(t, ns, "safeguarding", 2, 2, "csc", "gp", "ed")
	// gp publishes after the rotation: under the newest key only. (No
	// background publisher runs here, so csc's and ed's entries stay under
	// epoch 1.)
	if r := ns["gp"].do(t, "POST", "/v1/records", "op-token", `{"localId":"g1","nhsNumber":"999 000 0018"}`); r.status != 201 {
		t.Fatalf("gp create: %d %s", r.status, r.body)
	}
	res := locate("school")
	if got := holders(res); !slices.Equal(got, []string{"csc", "ed", "gp"}) {
		t.Fatalf("overlap: holders %v, want csc, ed, gp", got)
	}
	if len(res.LookupKeys) != 2 || res.LookupKeys[0].Epoch != 2 || res.LookupKeys[1].Epoch != 1 ||
		res.LookupKey != res.LookupKeys[0].LookupKey || res.LookupKeys[1].LookupKey != before.LookupKey {
		t.Fatalf("overlap lookup keys: %+v (before %s)", res.LookupKeys, before.LookupKey)
	}
	// Each key alone finds only its own epoch's entries: the merge is what
	// finds everyone.
	for _, c := range []struct {
		key  string
		want int
	}{{res.LookupKeys[0].LookupKey, 1}, {res.LookupKeys[1].LookupKey, 2}} {
		r := ns["school"].do(t, "POST", "/v1/lookup", "prac-token", `{"lookupKey":"`+c.key+`","purpose":"safeguarding"}`)
		var lr lookupResponse
		json.Unmarshal([]byte(r.body), &lr)
		if r.status != 200 || len(lr.Entries) != c.want {
			t.Fatalf("lookup of one key: %d %s, want %d entries", r.status, r.body, c.want)
		}
	}
	// An agency found under both keys is listed once; the asker's own
	// entries (under either key) only set selfHolds.
	if r := ns["gp"].do(t, "POST", "/v1/records", "op-token", `{"localId":"g2","nhsNumber":"999 000 0018"}`); r.status != 201 {
		t.Fatalf("gp second create: %d %s", r.status, r.body)
	}
	if res := locate("csc"); !slices.Equal(holders(res), []string{"ed", "gp"}) || !res.SelfHolds {
		t.Fatalf("at csc: %+v", res)
	}

	// The evaluate answer tells the page both epochs, newest first.
	r := ns["school"].do(t, "POST", "/v1/tokens/evaluate", "prac-token", `{"purpose":"safeguarding","blinded":["4vqPpZ3VgW7Pq+wC4XqDrObb0VzyNRHeBVFE0YZ/9Ek="]}`)
	var ev evaluateResponse
	json.Unmarshal([]byte(r.body), &ev)
	if r.status != 200 || ev.Epoch != 2 || !slices.Equal(ev.Epochs, []uint32{2, 1}) {
		t.Fatalf("evaluate: %d %s", r.status, r.body)
	}

	// A contact request by number reaches csc, which knows its record only
	// under the old key.
	r = ns["school"].do(t, "POST", "/v1/contact-requests", "prac-token", `{"nodeId":"csc","purpose":"safeguarding","nhsNumber":"9990000018"}`)
	if r.status != 200 {
		t.Fatalf("contact request to a holder under the old key: %d %s", r.status, r.body)
	}

	// The issuers retire epoch 1 before the school hears of it: the
	// school's locate still answers, from the newer key alone.
	for _, id := range []string{"csc", "gp", "ed"} {
		kr := ns[id].opt.Keyring.(*adapter.Keyring)
		if err := kr.SetKeys(slices.DeleteFunc(kr.All(), func(ks KeySet) bool { return ks.Epoch < 2 })); err != nil {
			t.Fatal(err)
		}
	}
	if res := locate("school"); len(res.LookupKeys) != 1 || res.LookupKeys[0].Epoch != 2 || !slices.Equal(holders(res), []string{"gp"}) {
		t.Fatalf("old key gone at its issuers: %+v", res)
	}
}

// rotationPending reads signpost_rotation_pending{purpose,epoch,action}
// from n's collector (-1: no such series).
func rotationPending(n *Node, purpose string, epoch uint32, action string) float64 {
	ch := make(chan prometheus.Metric, 64)
	rotationGauges{n}.Collect(ch)
	close(ch)
	for m := range ch {
		var pb dto.Metric
		m.Write(&pb)
		l := map[string]string{}
		for _, lp := range pb.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["purpose"] == purpose && l["epoch"] == strconv.FormatUint(uint64(epoch), 10) && l["action"] == action {
			return pb.GetGauge().GetValue()
		}
	}
	return -1
}

// retire takes every key of purpose older than epoch out of every node's
// keyring (as a key record whose RetireAt has passed does).
func retire(t *testing.T, ns map[string]*testNode, purpose string, epoch uint32) {
	t.Helper()
	for _, n := range ns {
		kr := n.opt.Keyring.(*adapter.Keyring)
		kept := slices.DeleteFunc(kr.All(), func(ks KeySet) bool { return ks.Purpose == purpose && ks.Epoch < epoch })
		if err := kr.SetKeys(kept); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRotationRepublishAndRetire: after a rotation each node's background
// pass publishes its records under the new key while keeping the old
// entries (every entry is found throughout, by the merged locate), with the
// work left in signpost_rotation_pending; once the old key is retired the
// next pass withdraws the old entries with the stored keys — the old lookup
// keys are tombstoned — and forgets them, and the records stay found
// under the new key alone.
func TestRotationRepublishAndRetire(t *testing.T) {
	ns, _ := wasmNodes(t, map[string][]string{
		"csc": {"safeguarding"}, "gp": {"safeguarding"}, "ed": {"safeguarding"}, "school": {"safeguarding"},
	}, 2, "csc", "gp", "ed")
	ctx := context.Background()
	for _, n := range ns {
		if err := n.start(false); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ node, id, nhs string }{{"csc", "c1", "9990000018"}, {"csc", "c2", "9990000026"}, {"ed", "e1", "9990000018"}} {
		if r := ns[c.node].do(t, "POST", "/v1/records", "op-token", `{"localId":"`+c.id+`","nhsNumber":"`+c.nhs+`"}`); r.status != 201 {
			t.Fatalf("%s create: %d %s", c.node, r.status, r.body)
		}
	}
	locate := func(nhs string) LocateResult {
		t.Helper()
		r := ns["school"].do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"`+nhs+`","purpose":"safeguarding"}`)
		var res LocateResult
		if err := json.Unmarshal([]byte(r.body), &res); err != nil || r.status != 200 {
			t.Fatalf("locate: %d %s", r.status, r.body)
		}
		return res
	}
	entries := func(key string) int {
		t.Helper()
		r := ns["school"].do(t, "POST", "/v1/lookup", "prac-token", `{"lookupKey":"`+key+`","purpose":"safeguarding"}`)
		var lr lookupResponse
		if err := json.Unmarshal([]byte(r.body), &lr); err != nil || r.status != 200 {
			t.Fatalf("lookup: %d %s", r.status, r.body)
		}
		return len(lr.Entries)
	}
	found := func(when string) {
		t.Helper()
		if got := holders(locate("9990000018")); !slices.Equal(got, []string{"csc", "ed"}) {
			t.Fatalf("%s: holders of the first person %v", when, got)
		}
		if got := holders(locate("9990000026")); !slices.Equal(got, []string{"csc"}) {
			t.Fatalf("%s: holders of the second person %v", when, got)
		}
	}
	epochs := func(node, id string) []uint32 {
		t.Helper()
		p, ok, err := ns[node].records.PublishedState(id)
		if err != nil || !ok {
			t.Fatalf("published state of %s: %v %v", id, ok, err)
		}
		var out []uint32
		for _, k := range p.Keys {
			out = append(out, k.Epoch)
		}
		slices.Sort(out)
		return out
	}
	old := locate("9990000018").LookupKey
	found("before the rotation")

	rotate(t, ns, "safeguarding", 2, 2, "csc", "gp", "ed")
	if got := rotationPending(ns["csc"].Node, "safeguarding", 2, "publish"); got != 2 {
		t.Fatalf("csc's records pending under epoch 2: %v, want 2", got)
	}
	found("rotated, nothing republished")
	ns["csc"].pub.step(ctx)
	if ns["csc"].pub.backfill || ns["csc"].records.OutboxLen() != 0 {
		t.Fatal("csc's pass did not finish")
	}
	if got := epochs("csc", "c1"); !slices.Equal(got, []uint32{1, 2}) {
		t.Fatalf("c1 is published under epochs %v, want 1 and 2", got)
	}
	if got := rotationPending(ns["csc"].Node, "safeguarding", 2, "publish"); got != 0 {
		t.Fatalf("csc pending after its pass: %v", got)
	}
	if got := rotationPending(ns["ed"].Node, "safeguarding", 2, "publish"); got != 1 {
		t.Fatalf("ed pending before its pass: %v", got)
	}
	found("csc republished, ed not yet")
	ns["ed"].pub.step(ctx)
	found("both republished")
	res := locate("9990000018")
	if entries(res.LookupKeys[0].LookupKey) != 2 || entries(old) != 2 {
		t.Fatalf("overlap: %d entries under the new key, %d under the old, want 2 and 2", entries(res.LookupKeys[0].LookupKey), entries(old))
	}

	retire(t, ns, "safeguarding", 2)
	if got := rotationPending(ns["csc"].Node, "safeguarding", 1, "withdraw"); got != 2 {
		t.Fatalf("csc's records to withdraw under epoch 1: %v, want 2", got)
	}
	evaluated := func() float64 {
		var sum float64
		for _, n := range ns {
			sum += promtest.ToFloat64(n.metrics.evaluations.WithLabelValues("safeguarding", outcomeOK))
		}
		return sum
	}
	before := evaluated()
	for _, id := range []string{"csc", "ed", "gp", "school"} {
		ns[id].pub.step(ctx)
	}
	if after := evaluated(); after != before {
		t.Fatalf("the withdrawal pass asked the issuers for %v evaluations, want none", after-before)
	}
	if got := epochs("csc", "c1"); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("after retirement c1 is published under epochs %v, want 2 only", got)
	}
	if got := rotationPending(ns["csc"].Node, "safeguarding", 1, "withdraw"); got != -1 {
		t.Fatalf("withdrawals pending after the pass: %v", got)
	}
	if n := entries(old); n != 0 {
		t.Fatalf("%d live entries under the retired key, want 0 (tombstoned)", n)
	}
	if _, _, ok, _ := ns["csc"].records.Owner(mustKey(t, old)); ok {
		t.Fatal("the retired lookup key is still owned")
	}
	res = locate("9990000018")
	if len(res.LookupKeys) != 1 || res.LookupKeys[0].Epoch != 2 || entries(res.LookupKey) != 2 {
		t.Fatalf("after retirement: %+v, %d entries", res.LookupKeys, entries(res.LookupKey))
	}
	found("after retirement")
}

func mustKey(t *testing.T, s string) [16]byte {
	t.Helper()
	k, aerr := decodeLookupKey(s)
	if aerr != nil {
		t.Fatal(aerr)
	}
	return k
}

func holders(res LocateResult) []string {
	var out []string
	for _, h := range res.Holders {
		out = append(out, h.NodeID)
	}
	return out
}

// TestRotationPassIsPaced: the pass after a new key enqueues at most
// epochStep records per step and runs its next step no sooner than
// rotationPace later on the node's clock, however often it is woken; the
// rest go out once the pace has passed.
func TestRotationPassIsPaced(t *testing.T) {
	fed := newFakeFed()
	dir := t.TempDir()
	cfg := func(c *Config) { c.DataDir = dir }
	const total = epochStep + 200
	a := manualNode(t, Options{Index: fed.index("a", "Agency a")}, cfg)
	mustImport(t, a, goodRows(total), total)
	a.srv.Close()
	a.Shutdown(context.Background())

	clock := newTestClock()
	keys := soloKeyring("a")
	keys.epoch = 2
	b := manualNode(t, Options{Index: fed.index("a", "Agency a"), Keyring: keys, Now: clock.Now}, cfg)
	underNew := func() int {
		n := 0
		b.records.ForEachPublished(func(_ string, p records.Published) error {
			if p.Epoch == b.keyGeneration() {
				n++
			}
			return nil
		})
		return n
	}
	ctx := context.Background()
	b.pub.step(ctx)
	if got := underNew(); got != epochStep || !b.pub.backfill {
		t.Fatalf("first step: %d published under the new key, want %d with the pass going on", got, epochStep)
	}
	for range 3 { // woken again and again (writes kick it): no faster
		if wait := b.pub.step(ctx); wait <= 0 || wait > rotationPace {
			t.Fatalf("step within the pace waits %v, want (0, %v]", wait, rotationPace)
		}
	}
	if got := underNew(); got != epochStep {
		t.Fatalf("%d published before the pace passed, want %d", got, epochStep)
	}
	clock.Advance(rotationPace)
	b.pub.step(ctx)
	b.pub.step(ctx)
	if got := underNew(); got != total || b.pub.backfill {
		t.Fatalf("after the pace: %d published under the new key, want %d, pass over", got, total)
	}
}

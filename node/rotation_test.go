package node

import (
	"crypto/rand"
	"encoding/json"
	"slices"
	"testing"

	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/internal/leakscan"
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
	holders := func(res LocateResult) []string {
		var out []string
		for _, h := range res.Holders {
			out = append(out, h.NodeID)
		}
		return out
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
}

package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Tests of the findings of a hostile user's probe (issue 13, items 4, 6
// and 7): each fails on the code before the fix.

// TestLookupNeedsAuthorisedPurpose: POST /v1/lookup requires a purpose the
// node is authorised for; a missing or foreign purpose is refused, nothing
// is answered, and the refusal is audited as denied.
func TestLookupNeedsAuthorisedPurpose(t *testing.T) {
	aud := &countingAudit{}
	a := newTestNodeWith(t, newFakeFed(), "school", func(c *Config) { c.Purposes = []string{"safeguarding"} },
		func(o *Options) { o.Audit = aud })
	key := `"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"`
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{` + key + `}`, 400, "bad_request"},
		{`{` + key + `,"purpose":""}`, 400, "bad_request"},
		{`{` + key + `,"purpose":"marketing"}`, 403, "purpose_not_authorised"},
		{`{` + key + `,"purpose":"direct-care"}`, 403, "purpose_not_authorised"},
	} {
		before := len(aud.all())
		r := a.do(t, "POST", "/v1/lookup", "prac-token", tc.body)
		if r.status != tc.status || r.errCode() != tc.code || strings.Contains(r.body, "entries") {
			t.Fatalf("%s: %d %s", tc.body, r.status, r.body)
		}
		evs := aud.all()[before:]
		if len(evs) != 1 || evs[0].Action != "lookup" || evs[0].Outcome != "denied" || evs[0].Actor != "prac" || evs[0].Purpose != "" {
			t.Fatalf("%s: audit %+v", tc.body, evs)
		}
	}
	r := a.do(t, "POST", "/v1/lookup", "prac-token", `{`+key+`,"purpose":"safeguarding"}`)
	evs := aud.all()
	if r.status != 200 || evs[len(evs)-1].Outcome != "ok" || evs[len(evs)-1].Purpose != "safeguarding" {
		t.Fatalf("authorised lookup: %d %s, audit %+v", r.status, r.body, evs[len(evs)-1])
	}
}

// memberPeers is stubPeers whose federation has the members named.
type memberPeers struct {
	stubPeers
	members []string
}

func (p memberPeers) Purposes(id string) []string {
	for _, m := range p.members {
		if m == id {
			return []string{"safeguarding"}
		}
	}
	return nil
}

// TestContactUnknownNode: a contact request to a node that is no member is
// 404 unknown_node (not a 502 outage), and nothing is sent to anyone.
func TestContactUnknownNode(t *testing.T) {
	aud := &countingAudit{}
	calls := 0
	peers := memberPeers{stubPeers: stubPeers{}, members: []string{"gp"}}
	a := newTestNodeWith(t, newFakeFed(), "a", nil, func(o *Options) { o.Peers, o.Audit = countCalls{peers, &calls}, aud })
	r := a.do(t, "POST", "/v1/contact-requests", "prac-token", `{"nodeId":"no-such-node","purpose":"safeguarding","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"}`)
	if r.status != 404 || r.errCode() != "unknown_node" || !isErrorShape(r.body) || calls != 0 {
		t.Fatalf("unknown node: %d %s, %d calls", r.status, r.body, calls)
	}
	if evs := aud.all(); len(evs) != 1 || evs[0].Outcome != "denied" || evs[0].Peer != "" {
		t.Fatalf("audit: %+v", evs)
	}
	r = a.do(t, "POST", "/v1/contact-requests", "prac-token", `{"nodeId":"gp","purpose":"safeguarding","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"}`)
	if r.status != 200 || calls != 1 {
		t.Fatalf("member: %d %s, %d calls", r.status, r.body, calls)
	}
}

// countCalls counts the peer calls made through it.
type countCalls struct {
	memberPeers
	n *int
}

func (c countCalls) Call(ctx context.Context, id, path string, in, out any) error {
	*c.n++
	return c.memberPeers.Call(ctx, id, path, in, out)
}

// TestRecordFieldSets: localId and category outside their documented sets
// are refused (400 invalid_record) and nothing is stored, by the API and
// by import alike.
func TestRecordFieldSets(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", nil)
	for _, body := range []string{
		`{"localId":"../../../etc/passwd","nhsNumber":"9990000018"}`,
		`{"localId":"/","nhsNumber":"9990000018"}`,
		`{"localId":"a/b","nhsNumber":"9990000018"}`,
		`{"localId":"..","nhsNumber":"9990000018"}`,
		`{"localId":"abc\u202edef","nhsNumber":"9990000018"}`,
		`{"localId":"abc\u200fdef","nhsNumber":"9990000018"}`,
		`{"localId":"` + strings.Repeat("x", 129) + `","nhsNumber":"9990000018"}`,
		`{"localId":"c1","nhsNumber":"9990000018","category":"<script>alert(1)</script>"}`,
		`{"localId":"c1","nhsNumber":"9990000018","category":"gp\u202e"}`,
		`{"localId":"c1","nhsNumber":"9990000018","category":"Child In Need"}`,
	} {
		r := a.do(t, "POST", "/v1/records", "op-token", body)
		if r.status != 400 || r.errCode() != "invalid_record" {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
	}
	if a.count(t) != 0 {
		t.Fatal("a refused record was stored")
	}
	if r := a.do(t, "POST", "/v1/records", "op-token", `{"localId":"CASE-2024:0017","nhsNumber":"9990000018","category":"child-in-need"}`); r.status != 201 {
		t.Fatalf("valid record: %d %s", r.status, r.body)
	}
}

// TestOtherAgencyCategoryNotPassedOn: a category outside the slug syntax
// published by another node (an older release, or a hostile one) is not
// passed on to this node's callers.
func TestOtherAgencyCategoryNotPassedOn(t *testing.T) {
	fed := newFakeFed()
	a := newTestNode(t, fed, "a", nil)
	b := newTestNode(t, fed, "b", nil)
	ks, err := b.tok.Keys(context.Background(), nil, "safeguarding", []string{nhsA})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := b.opt.Index.Publish(context.Background(), ks[0], "<script>alert(1)</script>", 1, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r := a.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"`+nhsA+`","purpose":"safeguarding"}`)
	var res LocateResult
	if err := json.Unmarshal([]byte(r.body), &res); err != nil || len(res.Holders) != 1 || res.Holders[0].Category != "" || strings.Contains(r.body, "script") {
		t.Fatalf("locate: %d %s", r.status, r.body)
	}
}

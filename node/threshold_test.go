package node

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// thresholdFederation is three issuer nodes a, b, c of a 2-of-3 key (fake
// shares, see fakeKeyring), each holding its own share, reaching each other
// through fakePeers; down and forged name the issuers that cannot be
// reached and those whose proofs are forged.
func thresholdFederation(t *testing.T, down, forged []string) (map[string]*testNode, map[string]*countingAudit, map[string]*prometheus.Registry) {
	t.Helper()
	fed := newFakeFed()
	nodes := map[string]*Node{}
	downSet := newNodeSet(down...)
	purposes := map[string][]string{"a": {"safeguarding", "direct-care"}, "b": {"safeguarding", "direct-care"}, "c": {"safeguarding", "direct-care"}}
	out, audits, regs := map[string]*testNode{}, map[string]*countingAudit{}, map[string]*prometheus.Registry{}
	// A forged partial is audited only if it arrives before the round
	// ends: hold the honest issuers' answers to a (except a's own) until a
	// has audited the forgeries, so that the test is deterministic.
	hold := map[string]chan struct{}{}
	seen := make(chan struct{})
	pending := len(forged)
	if pending > 0 {
		for _, id := range []string{"b", "c"} {
			if !slices.Contains(forged, id) {
				hold[id] = seen
			}
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		kr := &fakeKeyring{t: 2, issuers: []string{"a", "b", "c"}, mine: map[string]bool{id: true}}
		for _, f := range forged {
			kr.forge = kr.forge || f == id
		}
		audits[id], regs[id] = &countingAudit{}, prometheus.NewRegistry()
		if id == "a" {
			audits[id].onRecord = func(e AuditEvent) {
				if e.Action == "evaluate-partial" {
					if pending--; pending == 0 {
						close(seen)
					}
				}
			}
		}
		peerHold := hold
		if id != "a" {
			peerHold = nil
		}
		out[id] = newTestNodeWith(t, fed, id, nil, func(o *Options) {
			o.Keyring, o.Audit, o.Metrics = kr, audits[id], regs[id]
			o.Peers = &fakePeers{self: id, nodes: nodes, desc: purposes, down: downSet, hold: peerHold}
		})
		nodes[id] = out[id].Node
	}
	return out, audits, regs
}

// TestThresholdEvaluation: a node asks every issuer of the purpose's key in
// parallel and returns the first t valid partials; a forged partial is
// rejected, counted and audited and another issuer is used; with fewer than
// t valid answers the caller gets 503 issuers_unavailable saying how many of
// how many answered.
func TestThresholdEvaluation(t *testing.T) {
	for _, tc := range []struct {
		name          string
		down, forged  []string
		status        int
		code, message string
		indices       []uint16
	}{
		{name: "all up", status: 200, indices: nil},
		{name: "one down", down: []string{"c"}, status: 200, indices: []uint16{1, 2}},
		{name: "asker's peer down", down: []string{"b"}, status: 200, indices: []uint16{1, 3}},
		{name: "one forged", forged: []string{"b"}, status: 200, indices: []uint16{1, 3}},
		{name: "two down", down: []string{"b", "c"}, status: 503, code: "issuers_unavailable", message: "only 1 of 3 token issuers answered and 2 are needed"},
		{name: "one down, one forged", down: []string{"c"}, forged: []string{"b"}, status: 503, code: "issuers_unavailable", message: "only 1 of 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, audits, regs := thresholdFederation(t, tc.down, tc.forged)
			r := nodes["a"].do(t, "POST", "/v1/tokens/evaluate", "prac-token", `{"purpose":"safeguarding","blinded":["AAEC","AAED"]}`)
			if r.status != tc.status {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if tc.status != 200 {
				if r.errCode() != tc.code || !strings.Contains(r.body, tc.message) {
					t.Fatalf("got %s", r.body)
				}
				return
			}
			var resp evaluateResponse
			if err := json.Unmarshal([]byte(r.body), &resp); err != nil {
				t.Fatal(err)
			}
			if resp.T != 2 || resp.Epoch != 1 || resp.Purpose != "safeguarding" || len(resp.Partials) != 2 {
				t.Fatalf("answer %+v", resp)
			}
			var got []uint16
			for _, p := range resp.Partials {
				got = append(got, p.Index)
				if len(p.Evaluated) != 2 || p.PublicShare == "" || p.Issuer == "" {
					t.Fatalf("partial %+v", p)
				}
			}
			if got[0] >= got[1] {
				t.Fatalf("partials not ordered by index: %v", got)
			}
			if tc.indices != nil && (got[0] != tc.indices[0] || got[1] != tc.indices[1]) {
				t.Fatalf("partials from %v, want %v", got, tc.indices)
			}
			for _, f := range tc.forged {
				found := false
				for _, e := range audits["a"].all() {
					if e.Action == "evaluate-partial" && e.Peer == f && e.Outcome == "error" && e.Count == 2 {
						found = true
					}
				}
				if !found {
					t.Fatalf("forged partial of %s not audited: %+v", f, audits["a"].all())
				}
				m := nodes["a"].do(t, "GET", "/metrics", "", "")
				if !strings.Contains(m.body, `signpost_issuer_partials_total{issuer="`+f+`",outcome="bad_proof"} 1`) {
					t.Fatalf("forged partial not counted:\n%s", m.body)
				}
			}
			_ = regs
		})
	}
}

// TestThresholdRefusalPassesThrough: an issuer's refusal for the purpose is
// the caller's answer (403), not an outage (503).
func TestThresholdRefusalPassesThrough(t *testing.T) {
	fed := newFakeFed()
	nodes := map[string]*Node{}
	purposes := map[string][]string{"s": {"safeguarding"}, "i1": {"safeguarding"}, "i2": {"safeguarding"}}
	mk := func(id string, mine bool) *testNode {
		kr := &fakeKeyring{t: 2, issuers: []string{"i1", "i2"}, mine: map[string]bool{id: mine}}
		tn := newTestNodeWith(t, fed, id, nil, func(o *Options) {
			o.Keyring, o.Peers = kr, &fakePeers{self: id, nodes: nodes, desc: purposes}
		})
		nodes[id] = tn.Node
		return tn
	}
	mk("i1", true)
	mk("i2", true)
	s := mk("s", false) // asks for direct-care, which its descriptor lacks
	r := s.do(t, "POST", "/v1/tokens/evaluate", "prac-token", `{"purpose":"direct-care","blinded":["AAEC"]}`)
	if r.status != 403 || r.errCode() != "purpose_not_authorised" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// TestFederationEndpoint: GET /v1/federation shows operators the keys (t,
// n, each issuer's public share) and each issuer's last answer.
func TestFederationEndpoint(t *testing.T) {
	nodes, _, _ := thresholdFederation(t, []string{"c"}, nil)
	a := nodes["a"]
	if r := a.do(t, "POST", "/v1/tokens/evaluate", "prac-token", `{"purpose":"safeguarding","blinded":["AAEC"]}`); r.status != 200 {
		t.Fatalf("evaluate: %d %s", r.status, r.body)
	}
	if r := a.do(t, "GET", "/v1/federation", "prac-token", ""); r.status != 403 {
		t.Fatalf("practitioner: %d", r.status)
	}
	r := a.do(t, "GET", "/v1/federation", "op-token", "")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var fr federationResponse
	if err := json.Unmarshal([]byte(r.body), &fr); err != nil {
		t.Fatal(err)
	}
	if fr.Self != "a" || len(fr.Keys) != 2 || fr.Keys[0].T != 2 || fr.Keys[0].N != 3 || !fr.Keys[0].Share || len(fr.Keys[0].Issuers) != 3 {
		t.Fatalf("keys: %+v", fr.Keys)
	}
	states := map[string]string{}
	for _, is := range fr.Issuers {
		states[is.NodeID] = is.State
	}
	// a and b answered; c, asked in parallel, may or may not have been
	// heard from before the first two valid answers ended the round.
	if states["a"] != "ok" || states["b"] != "ok" || (states["c"] != "failing" && states["c"] != "unknown") {
		t.Fatalf("issuers: %+v", fr.Issuers)
	}
}

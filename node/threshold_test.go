package node

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestThresholdEvaluation: a node asks the purpose's key's issuers (t
// first, another for each that fails) and returns the first t valid
// partials; a forged partial is
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

// TestIssuersAskedAsNeeded: with t = 2 of 3, an issuer node asks itself and
// one other issuer, spreading its requests over the others; a failed
// issuer is replaced at once; one that does not answer within the hedge is
// replaced then, and is not asked first again while the others answer.
func TestIssuersAskedAsNeeded(t *testing.T) {
	// federation is issuers a, b and c; a's calls are counted, held (hold)
	// or refused (down).
	// The hedge: long where a test counts calls (a loaded machine must not
	// hedge), shorter where it is waited for.
	federation := func(t *testing.T, hedge time.Duration, hold map[string]chan struct{}, down *nodeSet) (*Node, *callCounter) {
		fed := newFakeFed()
		nodes := map[string]*Node{}
		purposes := map[string][]string{"a": {"safeguarding"}, "b": {"safeguarding"}, "c": {"safeguarding"}}
		asked := &callCounter{}
		for _, id := range []string{"a", "b", "c"} {
			kr := &fakeKeyring{t: 2, issuers: []string{"a", "b", "c"}, mine: map[string]bool{id: true}}
			tn := newTestNodeWith(t, fed, id, func(c *Config) {
				c.Purposes = []string{"safeguarding"}
				c.IssuerHedge = DurationOf(hedge)
				c.IssuerTimeout = DurationOf(2 * time.Minute)
			}, func(o *Options) {
				o.Keyring = kr
				p := &fakePeers{self: id, nodes: nodes, desc: purposes}
				if id == "a" {
					p.asked, p.hold, p.down = asked, hold, down
				}
				o.Peers = p
			})
			nodes[id] = tn.Node
		}
		return nodes["a"], asked
	}
	evaluate := func(t *testing.T, a *Node, want uint16) {
		t.Helper()
		_, ps, err := a.evaluatePartials(t.Context(), "safeguarding", 0, [][]byte{{1, 2}}, forClient)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 2 || ps[0].Index != 1 || (want != 0 && ps[1].Index != want) {
			t.Fatalf("partials %+v, want a's and issuer %d's", ps, want)
		}
	}
	t.Run("all answer", func(t *testing.T) {
		a, asked := federation(t, time.Minute, nil, nil)
		for range 40 {
			evaluate(t, a, 0)
		}
		// One peer call each, spread over b and c (all 40 to one of them:
		// probability 2^-39).
		if b, c := asked.get("b"), asked.get("c"); b+c != 40 || b == 0 || c == 0 {
			t.Fatalf("40 evaluations asked b %d and c %d times, want 40 calls over both", b, c)
		}
	})
	t.Run("one refuses connections", func(t *testing.T) {
		a, asked := federation(t, time.Minute, nil, newNodeSet("c"))
		for range 10 {
			evaluate(t, a, 2)
		}
		if b := asked.get("b"); b != 10 {
			t.Fatalf("b asked %d times in 10 evaluations", b)
		}
	})
	t.Run("one hangs", func(t *testing.T) {
		hung := make(chan struct{})
		defer close(hung)
		a, asked := federation(t, 300*time.Millisecond, map[string]chan struct{}{"b": hung}, nil)
		// Until b has been asked first (a random order), and the hedge
		// passed: c answers.
		for i := 0; asked.get("b") == 0; i++ {
			if i == 100 {
				t.Fatal("b was never asked")
			}
			evaluate(t, a, 3)
		}
		n := asked.get("b")
		for range 20 {
			evaluate(t, a, 3)
		}
		if got := asked.get("b"); got != n {
			t.Fatalf("b, slow, was asked first %d more times", got-n)
		}
	})
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

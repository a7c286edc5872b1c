package node

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingAudit keeps the events a node audits.
type countingAudit struct {
	mu     sync.Mutex
	events []AuditEvent
	// onRecord, if set, sees every event as it is recorded.
	onRecord func(AuditEvent)
}

func (a *countingAudit) Subject([][16]byte) (any, error) { return nil, ErrNoAuditQuery }

func (a *countingAudit) Record(_ context.Context, e AuditEvent) error {
	a.mu.Lock()
	a.events = append(a.events, e)
	on := a.onRecord
	a.mu.Unlock()
	if on != nil {
		on(e)
	}
	return nil
}

func (a *countingAudit) all() []AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AuditEvent(nil), a.events...)
}

func (f *fakeTokenizer) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// blinded is an evaluation request body with k elements.
func blinded(k int) string {
	return `{"purpose":"safeguarding","blinded":["AAEC"` + strings.Repeat(`,"AAEC"`, k-1) + `]}`
}

// TestUserRateLimit: with a burst of 3 and 1 a second on a stopped clock,
// a practitioner's fourth lookup, locate or evaluation is refused with 429
// rate_limited — before any tokenisation and without an audit event —
// while another practitioner is unaffected; a second later there is room
// for one more. Evaluations cost one per blinded element.
func TestUserRateLimit(t *testing.T) {
	users := StaticTokens{
		"prac-token":  {Name: "prac", Role: RolePractitioner},
		"prac2-token": {Name: "prac2", Role: RolePractitioner},
	}
	tests := []struct{ name, path, body string }{
		{"locate", "/v1/locate", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`},
		{"lookup", "/v1/lookup", `{"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA","purpose":"safeguarding"}`},
		{"evaluate", "/v1/tokens/evaluate", blinded(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock, aud := newTestClock(), &countingAudit{}
			a := newTestNodeWith(t, newFakeFed(), "a", func(c *Config) { c.UserRate, c.UserBurst = 1, 3 },
				func(o *Options) { o.Now, o.Audit, o.Auth = clock.Now, aud, users })
			for i := 0; i < 3; i++ {
				if r := a.do(t, "POST", tc.path, "prac-token", tc.body); r.status != 200 {
					t.Fatalf("request %d within the burst: %d %s", i+1, r.status, r.body)
				}
			}
			events, calls := len(aud.all()), a.tok.callCount()
			r := a.do(t, "POST", tc.path, "prac-token", tc.body)
			if r.status != 429 || r.errCode() != "rate_limited" || !isErrorShape(r.body) {
				t.Fatalf("over the limit: %d %s", r.status, r.body)
			}
			if got := r.header.Get("Retry-After"); got != "1" {
				t.Fatalf("Retry-After %q, want 1 (one token at 1/s)", got)
			}
			if got := len(aud.all()); got != events {
				t.Fatalf("a refused request was audited: %d events, was %d", got, events)
			}
			if got := a.tok.callCount(); got != calls {
				t.Fatal("a refused request was tokenised")
			}
			if r := a.do(t, "POST", tc.path, "prac2-token", tc.body); r.status != 200 {
				t.Fatalf("another user: %d %s", r.status, r.body)
			}
			clock.Advance(time.Second)
			if r := a.do(t, "POST", tc.path, "prac-token", tc.body); r.status != 200 {
				t.Fatalf("a second later: %d %s", r.status, r.body)
			}
			if r := a.do(t, "POST", tc.path, "prac-token", tc.body); r.status != 429 {
				t.Fatalf("the refill was one request: %d %s", r.status, r.body)
			}
		})
	}
	t.Run("evaluate counts elements", func(t *testing.T) {
		clock := newTestClock()
		a := newTestNodeWith(t, newFakeFed(), "a", func(c *Config) { c.UserRate, c.UserBurst = 1, 3 },
			func(o *Options) { o.Now, o.Auth = clock.Now, users })
		if r := a.do(t, "POST", "/v1/tokens/evaluate", "prac-token", blinded(4)); r.status != 429 || r.errCode() != "rate_limited" {
			t.Fatalf("4 elements, burst 3: %d %s", r.status, r.body)
		}
		if r := a.do(t, "POST", "/v1/tokens/evaluate", "prac-token", blinded(3)); r.status != 200 {
			t.Fatalf("3 elements, burst 3: %d %s", r.status, r.body)
		}
	})
}

// TestTokenRateLimit: an API token (a system caller) spends from its own
// rate (token_rate, token_burst), a person from the user rate; without
// token_rate, a token has the user rate.
func TestTokenRateLimit(t *testing.T) {
	users := StaticTokens{
		"prac-token": {Name: "prac", Role: RolePractitioner},
		"sys-token":  {Name: "case-system", Role: RolePractitioner, System: true},
	}
	body := `{"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA","purpose":"safeguarding"}`
	// within counts the requests a caller gets before its first 429.
	within := func(t *testing.T, a *testNode, token string) int {
		t.Helper()
		for i := range 50 {
			if r := a.do(t, "POST", "/v1/lookup", token, body); r.status == 429 {
				return i
			} else if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
		}
		return 50
	}
	for _, tc := range []struct {
		name        string
		cfg         func(*Config)
		person, sys int
	}{
		{"token rate set", func(c *Config) { c.UserRate, c.UserBurst, c.TokenRate, c.TokenBurst = 1, 3, 10, 20 }, 3, 20},
		{"token rate unset", func(c *Config) { c.UserRate, c.UserBurst = 1, 3 }, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newTestClock()
			a := newTestNodeWith(t, newFakeFed(), "a", tc.cfg, func(o *Options) { o.Now, o.Auth = clock.Now, users })
			if got := within(t, a, "prac-token"); got != tc.person {
				t.Fatalf("a person got %d lookups in the burst, want %d", got, tc.person)
			}
			if got := within(t, a, "sys-token"); got != tc.sys {
				t.Fatalf("an API token got %d lookups in the burst, want %d", got, tc.sys)
			}
		})
	}
}

// TestContactRequestCostsBudget: a contact request, which tokenises the
// number it names, spends the user's budget like a locate: over it, 429
// rate_limited before any tokenisation.
func TestContactRequestCostsBudget(t *testing.T) {
	users := StaticTokens{"prac-token": {Name: "prac", Role: RolePractitioner}}
	clock := newTestClock()
	a := newTestNodeWith(t, newFakeFed(), "a", func(c *Config) { c.UserRate, c.UserBurst = 1, 2 },
		func(o *Options) { o.Now, o.Auth, o.Peers = clock.Now, users, stubPeers{} })
	body := `{"nodeId":"b","purpose":"safeguarding","nhsNumber":"` + nhsA + `"}`
	for i := 0; i < 2; i++ {
		if r := a.do(t, "POST", "/v1/contact-requests", "prac-token", body); r.status == 429 {
			t.Fatalf("request %d within the burst: %d %s", i+1, r.status, r.body)
		}
	}
	calls := a.tok.callCount()
	if calls == 0 {
		t.Fatal("the contact requests did not tokenise: the test proves nothing")
	}
	if r := a.do(t, "POST", "/v1/contact-requests", "prac-token", body); r.status != 429 || r.errCode() != "rate_limited" {
		t.Fatalf("over the limit: %d %s", r.status, r.body)
	}
	if a.tok.callCount() != calls {
		t.Fatal("a refused contact request was tokenised")
	}
}

// TestIssuerRateLimitPerNode: the issuer allows each requesting node a
// burst of 3 blinded elements and 1 a second (on a stopped clock). Node b's
// practitioners, whose node forwards their evaluations, get 429
// rate_limited once b's budget is spent, whoever they are; node c's budget
// is its own; the issuer audits the refusal as denied, naming b.
func TestIssuerRateLimitPerNode(t *testing.T) {
	clock, issAudit := newTestClock(), &countingAudit{}
	fed := newFakeFed()
	nodes := map[string]*Node{}
	purposes := map[string][]string{"b": {"safeguarding"}, "c": {"safeguarding"}}
	iss := newTestNodeWith(t, fed, "iss", func(c *Config) { c.PeerRate, c.PeerBurst = 1, 3 },
		func(o *Options) {
			o.Now, o.Audit, o.Peers = clock.Now, issAudit, &fakePeers{self: "iss", nodes: nodes, desc: purposes}
		})
	nodes["iss"] = iss.Node
	forwarding := func(id string) *testNode {
		return newTestNodeWith(t, fed, id, nil, func(o *Options) {
			o.Keyring, o.Peers = &fakeKeyring{t: 1, issuers: []string{"iss"}}, &fakePeers{self: id, nodes: nodes, desc: purposes}
		})
	}
	b, c := forwarding("b"), forwarding("c")
	steps := []struct {
		node     *testNode
		name     string
		elements int
		advance  time.Duration
		status   int
	}{
		{b, "b", 2, 0, 200},
		{b, "b", 2, 0, 429}, // 1 left, 2 asked
		{c, "c", 3, 0, 200}, // c's own budget
		{b, "b", 1, 0, 200},
		{b, "b", 1, 0, 429},
		{b, "b", 2, 2 * time.Second, 200},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		r := s.node.do(t, "POST", "/v1/tokens/evaluate", "prac-token", blinded(s.elements))
		if r.status != s.status {
			t.Fatalf("step %d (%s, %d elements): %d %s, want %d", i, s.name, s.elements, r.status, r.body, s.status)
		}
		if s.status == 429 {
			if r.errCode() != "rate_limited" || !isErrorShape(r.body) {
				t.Fatalf("step %d: %s", i, r.body)
			}
			evs := issAudit.all()
			last := evs[len(evs)-1]
			if last.Action != "evaluate" || last.Actor != "node:"+s.name || last.Outcome != "denied" || last.Count != s.elements {
				t.Fatalf("step %d: issuer audited %+v", i, last)
			}
		}
	}
}

// TestCostsNameRoutes: every entry of the cost table names a route the
// node registers (a misspelt name would leave its route free).
func TestCostsNameRoutes(t *testing.T) {
	names := map[string]bool{}
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(nd ast.Node) bool {
			call, ok := nd.(*ast.CallExpr)
			if !ok {
				return true
			}
			var fn string
			switch f := call.Fun.(type) {
			case *ast.Ident:
				fn = f.Name
			case *ast.SelectorExpr:
				fn = f.Sel.Name
			case *ast.IndexExpr:
				if id, ok := f.X.(*ast.Ident); ok {
					fn = id.Name
				}
			}
			arg := map[string]int{"route": 0, "peerRoute": 0, "jsonRoute": 1, "chargedRoute": 1}
			if i, ok := arg[fn]; ok && len(call.Args) > i {
				if lit, ok := call.Args[i].(*ast.BasicLit); ok {
					names[strings.Trim(lit.Value, `"`)] = true
				}
			}
			return true
		})
	}
	if !names["locate"] || !names["peer.evaluate"] {
		t.Fatalf("found route names %v: the scan is broken", names)
	}
	for route := range costs {
		if !names[route] {
			t.Errorf("costs names %q, which is no route of the node", route)
		}
	}
}

package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/internal/leakscan"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

var (
	rtOnce sync.Once
	rt     *wasm.Runtime
	rtErr  error
)

// sharedRuntime compiles the module once for the package's tests.
func sharedRuntime(t testing.TB) *wasm.Runtime {
	t.Helper()
	rtOnce.Do(func() { rt, rtErr = wasm.New(context.Background(), wasm.DefaultConfig()) })
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return rt
}

// fakePeers routes peer calls to in-process nodes, as the federation's
// mutually authenticated transport would, naming the caller.
type fakePeers struct {
	self  string
	nodes map[string]*Node
	desc  map[string][]string // purposes by node id
	down  *nodeSet            // nodes that cannot be reached (nil: none)
	// hold delays calls to a node until its channel is closed (or the
	// call's context ends), so that a test can order answers without
	// sleeping.
	hold map[string]chan struct{}
	// asked, if set, counts the calls made to each node.
	asked *callCounter
}

// callCounter counts calls by node id. Safe for concurrent use.
type callCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *callCounter) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[id]++
}

func (c *callCounter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

func (p *fakePeers) Call(ctx context.Context, nodeID, path string, in, out any) error {
	if p.asked != nil {
		p.asked.add(nodeID)
	}
	n := p.nodes[nodeID]
	if n == nil || p.down.has(nodeID) {
		return fmt.Errorf("dial %s: connection refused", nodeID)
	}
	if h := p.hold[nodeID]; h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	body, _ := json.Marshal(in)
	req := httptest.NewRequestWithContext(ctx, "POST", path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json") // as AgentPeers.Call sends
	rec := httptest.NewRecorder()
	self := p.self
	n.PeerHandler(func(*http.Request) (string, bool) { return self, true }).ServeHTTP(rec, req)
	// The answer goes to another agency's node: the leak scanner checks it.
	recorded.Add(leakscan.Exchange{Method: "POST", Path: path, Request: string(body), Response: rec.Body.String()})
	if rec.Code != 200 {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(rec.Body.Bytes(), &e)
		return &PeerError{Status: rec.Code, Code: e.Error.Code, Message: e.Error.Message}
	}
	return json.Unmarshal(rec.Body.Bytes(), out)
}

// nodeSet is a set of node ids that tests change while calls are in
// flight (issuers asked in parallel may still be answering).
type nodeSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func newNodeSet(ids ...string) *nodeSet {
	s := &nodeSet{m: map[string]bool{}}
	for _, id := range ids {
		s.m[id] = true
	}
	return s
}

func (s *nodeSet) has(id string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

func (s *nodeSet) set(id string, in bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = in
}

func (p *fakePeers) Agency(id string) string     { return "Agency " + id }
func (p *fakePeers) Purposes(id string) []string { return p.desc[id] }

func (p *fakePeers) MemberKeys() []MemberKey { return nil }

// wasmNodes builds nodes with the real wasm tokenizer over one shared
// locator replica, and a t-of-n token key per purpose dealt among issuers
// (each holding its share). Calls to the nodes named in the returned map
// fail as if they were down.
func wasmNodes(t *testing.T, specs map[string][]string, threshold int, issuers ...string) (map[string]*testNode, *nodeSet) {
	t.Helper()
	r := sharedRuntime(t)
	var sets []KeySet
	shares := map[string][]*wasm.ShareIssuer{} // by purpose, in the order of issuers
	for _, p := range []string{"direct-care", "safeguarding"} {
		d, err := wasmtest.Deal(rand.Reader, p, 1, threshold, issuers...)
		if err != nil {
			t.Fatal(err)
		}
		leaks.NoteKey(leakscan.KindIssuer, d.Key, "")
		for _, s := range d.Shares {
			leaks.NoteKey(leakscan.KindIssuer, s, "")
		}
		sets = append(sets, adapter.PortKeySet(d.KeySet))
		shares[p] = d.Issuers
	}
	store, _ := locator.NewMemStore(locator.DefaultPolicy())
	t.Cleanup(func() { store.Close() })
	keys := adapter.StaticNodeKeys{}
	privs := map[string]ed25519.PrivateKey{}
	for id := range specs {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		keys[id], privs[id] = pub, priv
		leaks.NoteNodeKey(priv)
	}
	nodes := map[string]*Node{}
	down := newNodeSet()
	out := map[string]*testNode{}
	for id, purposes := range specs {
		var secret [32]byte
		rand.Read(secret[:])
		leaks.NoteKey(leakscan.KindHolder, secret[:], "")
		h, _ := locator.NewHolder(id, privs[id], secret)
		cfg := DefaultConfig()
		cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir, cfg.Purposes = id, "Agency "+id, "gp", t.TempDir(), purposes
		kr := adapter.NewKeyring(id)
		if err := kr.SetKeys(sets); err != nil {
			t.Fatal(err)
		}
		if i := slices.Index(issuers, id); i >= 0 {
			for p, ss := range shares {
				kr.AddShare(p, 1, ss[i])
			}
		}
		opt := Options{Tokenizer: &adapter.WasmTokenizer{R: r}, Index: adapter.NewLocatorIndex(h, store, nil, keys, nil), Auth: tokens,
			Peers: &fakePeers{self: id, nodes: nodes, desc: specs, down: down}, Keyring: kr,
			Logger: slog.New(slog.NewTextHandler(testLogs, nil))}
		n, err := New(cfg, opt)
		if err != nil {
			t.Fatal(err)
		}
		nodes[id] = n
		srv := httptest.NewServer(n.Handler())
		t.Cleanup(func() {
			srv.Close()
			n.Shutdown(context.Background())
		})
		out[id] = &testNode{Node: n, srv: srv}
	}
	return out, down
}

func TestWasmTokensEndToEnd(t *testing.T) {
	ns, _ := wasmNodes(t, map[string][]string{
		"csc":    {"direct-care", "safeguarding"},
		"school": {"safeguarding"},
		"gp":     {"direct-care", "safeguarding"},
	}, 2, "csc", "school", "gp")
	for _, c := range []struct{ node, id string }{{"csc", "c1"}, {"school", "s1"}, {"gp", "g1"}} {
		if r := ns[c.node].do(t, "POST", "/v1/records", "op-token", `{"localId":"`+c.id+`","nhsNumber":"999 000 0018"}`); r.status != 201 {
			t.Fatalf("%s create: %d %s", c.node, r.status, r.body)
		}
	}
	r := ns["gp"].do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`)
	var res LocateResult
	json.Unmarshal([]byte(r.body), &res)
	if r.status != 200 || len(res.Holders) != 2 || !res.SelfHolds {
		t.Fatalf("safeguarding: %d %s", r.status, r.body)
	}
	// The school is not authorised for direct-care: its entries are not
	// there, and it cannot even compute the token.
	r = ns["gp"].do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"direct-care"}`)
	res = LocateResult{}
	json.Unmarshal([]byte(r.body), &res)
	if len(res.Holders) != 1 || res.Holders[0].NodeID != "csc" {
		t.Fatalf("direct-care: %s", r.body)
	}
	r = ns["school"].do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"direct-care"}`)
	if r.status != 403 || r.errCode() != "purpose_not_authorised" {
		t.Fatalf("school direct-care: %d %s", r.status, r.body)
	}
	// Even a node lying about its own purposes is refused by the other
	// issuers, which check its descriptor: its own share alone is not
	// enough.
	ns["school"].cfg.Purposes = []string{"direct-care", "safeguarding"}
	r = ns["school"].do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"direct-care"}`)
	if r.status != 403 || r.errCode() != "purpose_not_authorised" {
		t.Fatalf("issuer must refuse: %d %s", r.status, r.body)
	}
	// A wrong check digit gives the module's reason, without the number.
	r = ns["gp"].do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"999 000 0013","purpose":"safeguarding"}`)
	if r.status != 400 || r.errCode() != "invalid_nhs_number" || !strings.Contains(strings.ToLower(r.body), "check") {
		t.Fatalf("bad check digit: %d %s", r.status, r.body)
	}
}

// TestWasmThresholdOutage: with a 2-of-3 key, one issuer down leaves
// locate and publishing working with real tokens (the same ones); two down
// gives 503 issuers_unavailable, saying how many answered, while lookups by
// key from the replica go on.
func TestWasmThresholdOutage(t *testing.T) {
	ns, down := wasmNodes(t, map[string][]string{
		"csc": {"safeguarding"}, "gp": {"safeguarding"}, "ed": {"safeguarding"}, "school": {"safeguarding"},
	}, 2, "csc", "gp", "ed")
	locate := func(node string) (resp, LocateResult) {
		r := ns[node].do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`)
		var res LocateResult
		json.Unmarshal([]byte(r.body), &res)
		return r, res
	}
	if r := ns["csc"].do(t, "POST", "/v1/records", "op-token", `{"localId":"c1","nhsNumber":"999 000 0018"}`); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	down.set("gp", true)
	if r := ns["ed"].do(t, "POST", "/v1/records", "op-token", `{"localId":"e1","nhsNumber":"999 000 0018"}`); r.status != 201 {
		t.Fatalf("create with one issuer down: %d %s", r.status, r.body)
	}
	r, res := locate("school")
	if r.status != 200 || len(res.Holders) != 2 {
		t.Fatalf("locate with one issuer down: %d %s", r.status, r.body)
	}
	down.set("ed", true)
	r, _ = locate("school")
	if r.status != 503 || r.errCode() != "issuers_unavailable" || !strings.Contains(r.body, "only 1 of 3 token issuers answered and 2 are needed") {
		t.Fatalf("two issuers down: %d %s", r.status, r.body)
	}
	down.set("ed", false)
	down.set("gp", false)
	if r, res := locate("school"); r.status != 200 || len(res.Holders) != 2 {
		t.Fatalf("issuers back: %d %s", r.status, r.body)
	}
}

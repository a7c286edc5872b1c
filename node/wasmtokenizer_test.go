package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/internal/leakscan"
	"github.com/signpost-federation/signpost/wasm"
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
}

func (p *fakePeers) Call(ctx context.Context, nodeID, path string, in, out any) error {
	n := p.nodes[nodeID]
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
func (p *fakePeers) Agency(id string) string     { return "Agency " + id }
func (p *fakePeers) Purposes(id string) []string { return p.desc[id] }

func (p *fakePeers) MemberKeys() []MemberKey { return nil }

// wasmNodes builds nodes with the real wasm tokenizer and a real issuer on
// the first node, over one shared locator replica.
func wasmNodes(t *testing.T, specs map[string][]string, issuerID string) map[string]*testNode {
	t.Helper()
	r := sharedRuntime(t)
	key, _ := wasm.GenerateIssuerKey()
	leaks.NoteKey(leakscan.KindIssuer, key, "")
	iss, _ := wasm.NewIssuer(key)
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
	out := map[string]*testNode{}
	for id, purposes := range specs {
		var secret [32]byte
		rand.Read(secret[:])
		leaks.NoteKey(leakscan.KindHolder, secret[:], "")
		h, _ := locator.NewHolder(id, privs[id], secret)
		cfg := DefaultConfig()
		cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir, cfg.Purposes, cfg.Issuer = id, "Agency "+id, "gp", t.TempDir(), purposes, issuerID
		tz := &adapter.WasmTokenizer{R: r, Epoch: 1, IssuerPublicKey: iss.PublicKey()}
		opt := Options{Tokenizer: tz, Index: adapter.NewLocatorIndex(h, store, nil, keys, nil), Auth: tokens,
			Peers: &fakePeers{self: id, nodes: nodes, desc: specs}, IssuerPublicKey: iss.PublicKey(),
			Logger: slog.New(slog.NewTextHandler(testLogs, nil))}
		if id == issuerID {
			opt.Issuer = adapter.IssuerEvaluator{I: iss}
		}
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
	return out
}

func TestWasmTokensEndToEnd(t *testing.T) {
	ns := wasmNodes(t, map[string][]string{
		"csc":    {"direct-care", "safeguarding"},
		"school": {"safeguarding"},
		"gp":     {"direct-care", "safeguarding"},
	}, "csc")
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
	// Even a node lying about its own purposes is refused by the issuer,
	// which checks the descriptor.
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

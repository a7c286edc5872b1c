package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Synthetic numbers in the 999 test range, check digits valid.
const (
	nhsA = "9990000018"
	nhsB = "9990000026"
)

var tokens = StaticTokens{
	"op-token":    {Name: "op", Role: RoleOperator},
	"prac-token":  {Name: "prac", Role: RolePractitioner},
	"audit-token": {Name: "aud", Role: RoleAuditor},
}

type testNode struct {
	*Node
	srv *httptest.Server
	tok *fakeTokenizer
}

func newTestNode(t *testing.T, fed *fakeFed, id string, mut func(*Config)) *testNode {
	t.Helper()
	return newTestNodeWith(t, fed, id, mut, nil)
}

// newTestNodeWith is newTestNode with the options changed by mutOpt too.
func newTestNodeWith(t *testing.T, fed *fakeFed, id string, mut func(*Config), mutOpt func(*Options)) *testNode {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.Agency = "Agency " + id
	cfg.Category = "school"
	cfg.DataDir = t.TempDir()
	cfg.Contact = "Duty desk " + id
	if mut != nil {
		mut(&cfg)
	}
	tok := &fakeTokenizer{}
	opt := Options{
		Tokenizer: tok,
		Index:     fed.index(id, cfg.Agency),
		Keyring:   soloKeyring(id),
		Auth:      tokens,
		Logger:    slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutOpt != nil {
		mutOpt(&opt)
	}
	n, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(func() {
		srv.Close()
		n.Shutdown(context.Background())
	})
	return &testNode{Node: n, srv: srv, tok: tok}
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (r resp) errCode() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal([]byte(r.body), &e)
	return e.Error.Code
}

func (tn *testNode) do(t *testing.T, method, path, token, body string) resp {
	t.Helper()
	req, err := http.NewRequest(method, tn.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return send(t, http.DefaultClient, req)
}

// send does req with c and returns the answer, read whole.
func send(t *testing.T, c *http.Client, req *http.Request) resp {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, string(b), res.Header}
}

func (tn *testNode) count(t *testing.T) int {
	n, err := tn.records.Count()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecordsAPI(t *testing.T) {
	fed := newFakeFed()
	a := newTestNode(t, fed, "a", nil)
	big := `{"localId":"x","nhsNumber":"` + strings.Repeat("9", 70000) + `"}`
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
		wantCount                       int
	}{
		{"create", "POST", "/v1/records", "op-token", `{"localId":"c1","nhsNumber":"999 000 0018","category":"cin"}`, 201, "", 1},
		{"idempotent retry", "POST", "/v1/records", "op-token", `{"localId":"c1","nhsNumber":"9990000018","category":"cin"}`, 200, "", 1},
		{"conflict", "POST", "/v1/records", "op-token", `{"localId":"c1","nhsNumber":"9990000026"}`, 409, "exists", 1},
		{"malformed json", "POST", "/v1/records", "op-token", `{"localId":`, 400, "bad_request", 1},
		{"unknown field", "POST", "/v1/records", "op-token", `{"localId":"c2","nhsNumber":"9990000026","x":1}`, 400, "bad_request", 1},
		{"trailing data", "POST", "/v1/records", "op-token", `{"localId":"c2","nhsNumber":"9990000026"} {}`, 400, "bad_request", 1},
		{"oversized", "POST", "/v1/records", "op-token", big, 413, "too_large", 1},
		{"bad check digit", "POST", "/v1/records", "op-token", `{"localId":"c2","nhsNumber":"9990000013"}`, 400, "invalid_nhs_number", 1},
		{"short number", "POST", "/v1/records", "op-token", `{"localId":"c2","nhsNumber":"999000001"}`, 400, "invalid_nhs_number", 1},
		{"no local id", "POST", "/v1/records", "op-token", `{"nhsNumber":"9990000026"}`, 400, "invalid_record", 1},
		{"past retention", "POST", "/v1/records", "op-token", `{"localId":"c2","nhsNumber":"9990000026","retainUntil":"2001-01-01"}`, 400, "invalid_record", 1},
		{"retention too long", "POST", "/v1/records", "op-token", `{"localId":"c2","nhsNumber":"9990000026","retainUntil":"2099-01-01"}`, 400, "invalid_record", 1},
		{"bad retention", "POST", "/v1/records", "op-token", `{"localId":"c2","nhsNumber":"9990000026","retainUntil":"soon"}`, 400, "invalid_record", 1},
		{"no credentials", "POST", "/v1/records", "", `{"localId":"c2","nhsNumber":"9990000026"}`, 401, "unauthenticated", 1},
		{"wrong credentials", "POST", "/v1/records", "nope", `{"localId":"c2","nhsNumber":"9990000026"}`, 401, "unauthenticated", 1},
		{"wrong role", "POST", "/v1/records", "prac-token", `{"localId":"c2","nhsNumber":"9990000026"}`, 403, "forbidden", 1},
		{"create second", "POST", "/v1/records", "op-token", `{"localId":"c2","nhsNumber":"9990000026","retainUntil":"2035-01-01"}`, 201, "", 2},
		{"delete", "DELETE", "/v1/records/c2", "op-token", "", 204, "", 1},
		{"delete missing", "DELETE", "/v1/records/c2", "op-token", "", 404, "not_found", 1},
		{"object", "POST", "/v1/records/c1/objection", "op-token", "", 204, "", 1},
		{"object again", "POST", "/v1/records/c1/objection", "op-token", "", 204, "", 1},
		{"object missing", "POST", "/v1/records/zz/objection", "op-token", "", 404, "not_found", 1},
		{"recreate objected", "POST", "/v1/records", "op-token", `{"localId":"c1","nhsNumber":"9990000018","category":"cin"}`, 200, "", 1}, // held, still withheld (TestObjectionCoversPerson)
		{"unknown endpoint", "GET", "/v1/nope", "", "", 404, "not_found", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(t, tc.method, tc.path, tc.token, tc.body)
			if r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("got %d %s, want %d %q", r.status, r.body, tc.status, tc.code)
			}
			if got := a.count(t); got != tc.wantCount {
				t.Fatalf("records: %d, want %d", got, tc.wantCount)
			}
		})
	}
}

func TestLocateAcrossNodes(t *testing.T) {
	fed := newFakeFed()
	a := newTestNode(t, fed, "a", nil)
	b := newTestNode(t, fed, "b", func(c *Config) { c.Category = "gp" })
	c := newTestNode(t, fed, "c", func(c *Config) { c.Purposes = []string{"direct-care"} })
	for _, x := range []struct {
		n   *testNode
		id  string
		nhs string
	}{{a, "a1", nhsA}, {b, "b1", nhsA}, {c, "c1", nhsA}, {b, "b2", nhsB}} {
		if r := x.n.do(t, "POST", "/v1/records", "op-token", `{"localId":"`+x.id+`","nhsNumber":"`+x.nhs+`"}`); r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	r := a.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"999 000 0018","purpose":"safeguarding"}`)
	if r.status != 200 {
		t.Fatalf("locate: %d %s", r.status, r.body)
	}
	var res LocateResult
	json.Unmarshal([]byte(r.body), &res)
	if !res.SelfHolds || len(res.Holders) != 1 || res.Holders[0].NodeID != "b" || res.Holders[0].Category != "gp" {
		t.Fatalf("safeguarding holders: %+v", res)
	}
	// c publishes under direct-care only: the purpose firewall.
	r = a.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"direct-care"}`)
	json.Unmarshal([]byte(r.body), &res)
	if len(res.Holders) != 2 {
		t.Fatalf("direct-care holders: %+v", res)
	}
	r = c.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`)
	if r.status != 403 || r.errCode() != "purpose_not_authorised" {
		t.Fatalf("unauthorised purpose: %d %s", r.status, r.body)
	}
	for name, tc := range map[string]struct {
		token, body string
		status      int
		code        string
	}{
		"invalid number":  {"prac-token", `{"nhsNumber":"9990000013","purpose":"safeguarding"}`, 400, "invalid_nhs_number"},
		"unknown purpose": {"prac-token", `{"nhsNumber":"9990000018","purpose":"marketing"}`, 403, "purpose_not_authorised"},
		"malformed":       {"prac-token", `[`, 400, "bad_request"},
		"operator":        {"op-token", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`, 403, "forbidden"},
		"anonymous":       {"", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`, 401, "unauthenticated"},
	} {
		t.Run(name, func(t *testing.T) {
			r := a.do(t, "POST", "/v1/locate", tc.token, tc.body)
			if r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if strings.Contains(r.body, "9990000") {
				t.Fatal("number echoed")
			}
		})
	}
	// Deleting b1 withdraws b from the answer.
	if r := b.do(t, "DELETE", "/v1/records/b1", "op-token", ""); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	r = a.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`)
	res = LocateResult{}
	json.Unmarshal([]byte(r.body), &res)
	if len(res.Holders) != 0 {
		t.Fatalf("after delete: %+v", res)
	}
}

func TestEvaluateAndLookup(t *testing.T) {
	fed := newFakeFed()
	a := newTestNode(t, fed, "a", nil)
	r := a.do(t, "POST", "/v1/tokens/evaluate", "prac-token", `{"purpose":"safeguarding","blinded":["AAEC"]}`)
	if r.status != 200 || !strings.Contains(r.body, `"evaluated":["AAEC"]`) {
		t.Fatalf("evaluate: %d %s", r.status, r.body)
	}
	for name, tc := range map[string]struct {
		path, body string
		status     int
		code       string
	}{
		"empty batch":    {"/v1/tokens/evaluate", `{"purpose":"safeguarding","blinded":[]}`, 400, "invalid_batch"},
		"bad element":    {"/v1/tokens/evaluate", `{"purpose":"safeguarding","blinded":["!!"]}`, 400, "invalid_element"},
		"bad purpose":    {"/v1/tokens/evaluate", `{"purpose":"marketing","blinded":["AAEC"]}`, 403, "purpose_not_authorised"},
		"wrong epoch":    {"/v1/tokens/evaluate", `{"purpose":"safeguarding","epoch":7,"blinded":["AAEC"]}`, 400, "unknown_epoch"},
		"lookup bad key": {"/v1/lookup", `{"lookupKey":"abc"}`, 400, "invalid_lookup_key"},
		"lookup ok":      {"/v1/lookup", `{"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA","purpose":"safeguarding"}`, 200, ""},
	} {
		t.Run(name, func(t *testing.T) {
			r := a.do(t, "POST", tc.path, "prac-token", tc.body)
			if r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})
	}
}

func TestProbesMetricsOpenAPI(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", nil)
	if r := a.do(t, "GET", "/healthz", "", ""); r.status != 200 {
		t.Fatal(r)
	}
	if r := a.do(t, "GET", "/readyz", "", ""); r.status != 200 {
		t.Fatal(r)
	}
	a.do(t, "POST", "/v1/locate", "", "{}")
	r := a.do(t, "GET", "/metrics", "", "")
	if r.status != 200 || !strings.Contains(r.body, `signpost_http_requests_total{route="locate",status="401"} 1`) {
		t.Fatalf("metrics: %s", r.body)
	}
	r = a.do(t, "GET", "/v1/openapi.json", "", "")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi: %v", err)
	}
	for _, rt := range []string{"POST /v1/records", "POST /v1/records/import", "DELETE /v1/records/{localId}", "POST /v1/records/{localId}/objection", "POST /v1/objections", "POST /v1/objections/withdraw",
		"POST /v1/locate", "POST /v1/tokens/evaluate", "POST /v1/lookup", "POST /v1/contact-requests", "GET /v1/contact-requests",
		"GET /v1/watch", "POST /v1/audit/subject-access", "GET /v1/audit/heads", "GET /healthz", "GET /readyz", "GET /metrics"} {
		m, p, _ := strings.Cut(rt, " ")
		if _, ok := doc.Paths[p][strings.ToLower(m)]; !ok {
			t.Errorf("openapi lacks %s", rt)
		}
	}
	a.Shutdown(context.Background())
	if a.ready.Load() {
		t.Fatal("ready after shutdown")
	}
}

func TestImportKeepsGoodRows(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", func(c *Config) { c.MaxBatch = 2 })
	csv := "localId,nhsNumber,category,retainUntil\n" +
		"r1,9990000018,cin,2035-01-01\n" +
		"r2,9990000013,,\n" + // bad check digit
		"r3,999 000 0026\n" +
		"r1,9990000034\n" + // duplicate local id
		"r4,9990000034,a,b,c,d\n" + // too many columns
		"r5,9990000034,,2001-01-01\n" + // past retention
		",9990000034\n" + // no local id
		"r6,9990000034\n"
	var progress []int
	rep, err := a.Import(context.Background(), strings.NewReader(csv), "op", func(d int) { progress = append(progress, d) })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != 3 || rep.Failed != 5 || len(rep.Errors) != 5 {
		t.Fatalf("report: %+v", rep)
	}
	wantLines := []int{3, 5, 6, 7, 8}
	for i, e := range rep.Errors {
		if e.Line != wantLines[i] || strings.Contains(e.Message, "999") {
			t.Errorf("error %d: %+v", i, e)
		}
	}
	if a.count(t) != 3 || len(progress) == 0 {
		t.Fatalf("count %d progress %v", a.count(t), progress)
	}
	// Through the API too.
	req, _ := http.NewRequest("POST", a.srv.URL+"/v1/records/import", strings.NewReader("r9,9990000042\nr10,1\n"))
	req.Header.Set("Authorization", "Bearer op-token")
	if r := send(t, http.DefaultClient, req); r.status != 200 || !strings.Contains(r.body, `"imported":1`) || !strings.Contains(r.body, `"failed":1`) {
		t.Fatalf("api import: %d %s", r.status, r.body)
	}
}

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/auth"
)

// authedNode is a node with the real auth and audit packages.
type authedNode struct {
	*testNode
	tokens map[string]string // role → API token
	log    *audit.Log
}

func newAuthedNode(t *testing.T) *authedNode {
	t.Helper()
	dir := t.TempDir()
	acfg := auth.DefaultConfig()
	acfg.UsersPath = filepath.Join(dir, auth.UsersFileName)
	acfg.Argon2 = auth.TestArgon2Params
	a, err := auth.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	toks := map[string]string{}
	for _, r := range auth.Roles {
		tok, _, err := a.Store().AddToken("sys-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		toks[string(r)] = tok
		if _, err := a.Store().AddUser("user-"+string(r), r, []byte("correct horse battery")); err != nil {
			t.Fatal(err)
		}
	}
	lg, err := audit.Open(filepath.Join(dir, audit.FileName), audit.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir = "a", "Agency a", "school", dir
	tok := &fakeTokenizer{}
	n, err := New(cfg, Options{Tokenizer: tok, Index: newFakeFed().index("a", "Agency a"), Issuer: &fakeEvaluator{},
		Auth: UserAuth{a}, Audit: AuditLog{lg}, Logger: slog.New(slog.NewTextHandler(testLogs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n.Republish(context.Background())
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(func() {
		srv.Close()
		n.Shutdown(context.Background())
	})
	return &authedNode{testNode: &testNode{Node: n, srv: srv, tok: tok}, tokens: toks, log: lg}
}

// TestRoleMatrix proves every denial of every endpoint: each role that may
// not call it gets 403, anonymous gets 401, and the allowed role is not
// denied.
func TestRoleMatrix(t *testing.T) {
	an := newAuthedNode(t)
	endpoints := []struct {
		method, path, body string
		allowed            []string
	}{
		{"POST", "/v1/records", `{"localId":"m1","nhsNumber":"9990000018"}`, []string{"operator"}},
		{"POST", "/v1/records/import", ``, []string{"operator"}},
		{"DELETE", "/v1/records/zz", ``, []string{"operator"}},
		{"POST", "/v1/records/zz/objection", ``, []string{"operator"}},
		{"POST", "/v1/locate", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`, []string{"practitioner"}},
		{"POST", "/v1/tokens/evaluate", `{"purpose":"safeguarding","blinded":["AAEC"]}`, []string{"practitioner"}},
		{"POST", "/v1/lookup", `{"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"}`, []string{"practitioner"}},
		{"POST", "/v1/contact-requests", `{"nodeId":"b","purpose":"safeguarding","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"}`, []string{"practitioner"}},
		{"GET", "/v1/contact-requests", ``, []string{"practitioner", "operator"}},
		{"GET", "/v1/watch", ``, []string{"practitioner"}},
		{"POST", "/v1/audit/subject-access", `{"nhsNumber":"9990000018"}`, []string{"auditor"}},
	}
	for _, ep := range endpoints {
		for _, role := range []string{"", "practitioner", "operator", "auditor"} {
			name := ep.method + " " + ep.path + " as " + role
			if role == "" {
				name += "anonymous"
			}
			t.Run(name, func(t *testing.T) {
				r := an.do(t, ep.method, ep.path, an.tokens[role], ep.body)
				allowed := false
				for _, a := range ep.allowed {
					allowed = allowed || a == role
				}
				switch {
				case role == "" && r.status != 401:
					t.Fatalf("anonymous: %d %s", r.status, r.body)
				case role != "" && !allowed && (r.status != 403 || r.errCode() != "forbidden"):
					t.Fatalf("denied role: %d %s", r.status, r.body)
				case allowed && (r.status == 401 || r.status == 403):
					t.Fatalf("allowed role denied: %d %s", r.status, r.body)
				}
			})
		}
	}
	if n := an.count(t); n != 1 {
		t.Fatalf("records: %d (only the operator's create may write)", n)
	}
}

// TestSessionCSRF: a signed-in practitioner's page must send the CSRF
// token with every write; the API token path needs none.
func TestSessionCSRF(t *testing.T) {
	an := newAuthedNode(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Post(an.srv.URL+"/v1/session", "application/json", strings.NewReader(`{"username":"user-practitioner","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sess auth.SessionResponse
	json.NewDecoder(res.Body).Decode(&sess)
	res.Body.Close()
	if res.StatusCode != 200 || sess.CSRFToken == "" {
		t.Fatalf("login: %d", res.StatusCode)
	}
	post := func(csrf string) (int, string) {
		req, _ := http.NewRequest("POST", an.srv.URL+"/v1/locate", strings.NewReader(`{"nhsNumber":"9990000018","purpose":"safeguarding"}`))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set(auth.CSRFHeader, csrf)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, body := post(""); st != 403 || !strings.Contains(body, "csrf_missing") {
		t.Fatalf("no csrf: %d %s", st, body)
	}
	if st, body := post("wrong"); st != 403 || !strings.Contains(body, "csrf_invalid") {
		t.Fatalf("wrong csrf: %d %s", st, body)
	}
	if st, body := post(sess.CSRFToken); st != 200 {
		t.Fatalf("with csrf: %d %s", st, body)
	}
}

// TestSubjectAccess: every operation on a person is found from the number.
func TestSubjectAccess(t *testing.T) {
	an := newAuthedNode(t)
	an.do(t, "POST", "/v1/records", an.tokens["operator"], `{"localId":"s1","nhsNumber":"9990000018"}`)
	an.do(t, "POST", "/v1/locate", an.tokens["practitioner"], `{"nhsNumber":"9990000018","purpose":"safeguarding"}`)
	an.do(t, "POST", "/v1/locate", an.tokens["practitioner"], `{"nhsNumber":"9990000026","purpose":"safeguarding"}`)
	r := an.do(t, "POST", "/v1/audit/subject-access", an.tokens["auditor"], `{"nhsNumber":"999 000 0018"}`)
	var out struct{ Events []audit.Entry }
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || r.status != 200 {
		t.Fatalf("subject access: %d %s", r.status, r.body)
	}
	var actions []string
	for _, e := range out.Events {
		actions = append(actions, string(e.Action))
	}
	if strings.Join(actions, ",") != "record-create,locate" {
		t.Fatalf("actions: %v", actions)
	}
	if _, err := audit.Verify(mustOpen(t, an.log.Path())); err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t *testing.T, path string) io.Reader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

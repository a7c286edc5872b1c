package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/leakscan"
)

// authedNode is a node with the real auth and audit packages and a real
// locator replica (one holder, one in-memory store).
type authedNode struct {
	*testNode
	tokens  map[string]string // role → API token
	log     *audit.Log
	replica locator.Store
	users   string // the users file
}

// testPassword is every authedNode user's password.
const testPassword = "correct horse battery"

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
	leaks.NoteString(leakscan.KindPassword, testPassword)
	toks := map[string]string{}
	for _, r := range auth.Roles {
		tok, _, err := a.Store().AddToken("sys-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		leaks.NoteString(leakscan.KindAPIToken, tok)
		toks[string(r)] = tok
		if _, err := a.Store().AddUser("user-"+string(r), r, []byte(testPassword)); err != nil {
			t.Fatal(err)
		}
	}
	lg, err := audit.Open(filepath.Join(dir, audit.FileName), audit.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	leaks.NoteAuditKey(lg.Path())
	replica, err := locator.NewMemStore(locator.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replica.Close() })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	leaks.NoteNodeKey(priv)
	var secret [32]byte
	rand.Read(secret[:])
	leaks.NoteKey(leakscan.KindHolder, secret[:], "")
	holder, err := locator.NewHolder("a", priv, secret)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir = "a", "Agency a", "school", dir
	tok := &fakeTokenizer{}
	n, err := New(cfg, Options{Tokenizer: tok, Index: adapter.NewLocatorIndex(holder, replica, nil, adapter.StaticNodeKeys{"a": pub}, nil), Keyring: soloKeyring("a"),
		Auth: UserAuth{a}, Audit: AuditLog{lg}, Logger: slog.New(slog.NewTextHandler(testLogs, nil))})
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
	return &authedNode{testNode: &testNode{Node: n, srv: srv, tok: tok}, tokens: toks, log: lg, replica: replica, users: acfg.UsersPath}
}

// trace is what a request can leave behind: records, audit events and
// entries in the locator replica (their count and the XOR of their
// digests, so that a new version of an entry shows too).
type trace struct {
	records int
	audit   uint64
	replica locator.Bucket
}

func (an *authedNode) trace(t *testing.T) trace {
	t.Helper()
	return trace{records: an.count(t), audit: an.log.Head().Size, replica: an.replica.Bucket(0, 0)}
}

// browser is a signed-in browser session: a client with the session
// cookie, and the CSRF token the page keeps.
type browser struct {
	c    *http.Client
	jar  http.CookieJar
	csrf string
	base string
}

// login signs user-<role> in and registers the session's secrets with the
// leak scanner.
func (an *authedNode) login(t *testing.T, role string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{c: &http.Client{Jar: jar}, jar: jar, base: an.srv.URL}
	res, err := b.c.Post(an.srv.URL+"/v1/session", "application/json", strings.NewReader(`{"username":"user-`+role+`","password":"`+testPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sess auth.SessionResponse
	json.NewDecoder(res.Body).Decode(&sess)
	res.Body.Close()
	if res.StatusCode != 200 || sess.CSRFToken == "" {
		t.Fatalf("login as %s: %d", role, res.StatusCode)
	}
	b.csrf = sess.CSRFToken
	leaks.NoteString(leakscan.KindCSRF, sess.CSRFToken)
	u, _ := url.Parse(an.srv.URL)
	for _, c := range jar.Cookies(u) {
		leaks.NoteString(leakscan.KindSession, c.Value)
	}
	return b
}

// do sends a request with the session cookie, and the CSRF token if csrf.
func (b *browser) do(t *testing.T, method, path, body string, csrf bool) resp {
	t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf {
		req.Header.Set(auth.CSRFHeader, b.csrf)
	}
	return send(t, b.c, req)
}

// dialWatch opens /v1/watch with a bearer token or a browser's cookie and
// returns the handshake's status (101 when the watch opened).
func dialWatch(t *testing.T, base, token string, b *browser) int {
	t.Helper()
	d := websocket.Dialer{}
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	if b != nil {
		d.Jar = b.jar
	}
	conn, res, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/v1/watch", hdr)
	if err == nil {
		conn.Close()
	}
	if res == nil {
		t.Fatalf("watch handshake: %v", err)
	}
	return res.StatusCode
}

// TestRoleMatrix calls every endpoint as every kind of caller — anonymous,
// each role with an API token, each role signed in with a session cookie
// (and its CSRF token) — and checks the exact answer: 401 for anonymous,
// 403 forbidden for a role the endpoint does not allow, and the endpoint's
// own answer (status and error code) for an allowed one.
func TestRoleMatrix(t *testing.T) {
	an := newAuthedNode(t)
	browsers := map[string]*browser{}
	for _, r := range []string{"practitioner", "operator", "auditor"} {
		browsers[r] = an.login(t, r)
	}
	endpoints := []struct {
		method, path string
		body         func(caller string) string
		allowed      []string
		status       int    // for an allowed caller
		code         string // for an allowed caller, when status is an error
	}{
		{"POST", "/v1/records", func(c string) string { return `{"localId":"m-` + c + `","nhsNumber":"9990000018"}` }, []string{"operator"}, 201, ""},
		{"POST", "/v1/records/import", nil, []string{"operator"}, 200, ""},
		{"DELETE", "/v1/records/zz", nil, []string{"operator"}, 404, "not_found"},
		{"POST", "/v1/records/zz/objection", nil, []string{"operator"}, 404, "not_found"},
		{"POST", "/v1/objections", fixed(`{"nhsNumber":"9990000013"}`), []string{"operator"}, 400, "invalid_nhs_number"},
		{"POST", "/v1/objections/withdraw", fixed(`{"nhsNumber":"9990000042"}`), []string{"operator"}, 404, "not_found"},
		{"POST", "/v1/locate", fixed(`{"nhsNumber":"9990000018","purpose":"safeguarding"}`), []string{"practitioner"}, 200, ""},
		{"POST", "/v1/tokens/evaluate", fixed(`{"purpose":"safeguarding","blinded":["AAEC"]}`), []string{"practitioner"}, 200, ""},
		{"POST", "/v1/lookup", fixed(`{"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA","purpose":"safeguarding"}`), []string{"practitioner"}, 200, ""},
		// A node without a federation cannot reach a holder: the request
		// is allowed and answered as such.
		{"POST", "/v1/contact-requests", fixed(`{"nodeId":"b","purpose":"safeguarding","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"}`), []string{"practitioner"}, 503, "no_federation"},
		{"GET", "/v1/contact-requests", nil, []string{"practitioner", "operator"}, 200, ""},
		{"GET", "/v1/watch", nil, []string{"practitioner"}, 101, ""},
		{"POST", "/v1/audit/subject-access", fixed(`{"nhsNumber":"9990000018"}`), []string{"auditor"}, 200, ""},
		{"GET", "/v1/audit/heads", nil, []string{"auditor"}, 200, ""},
	}
	type caller struct {
		name, role, token string
		b                 *browser
	}
	callers := []caller{{name: "anonymous"}}
	for _, r := range []string{"practitioner", "operator", "auditor"} {
		callers = append(callers, caller{name: "token-" + r, role: r, token: an.tokens[r]}, caller{name: "session-" + r, role: r, b: browsers[r]})
	}
	for _, ep := range endpoints {
		for _, c := range callers {
			t.Run(ep.method+" "+ep.path+" as "+c.name, func(t *testing.T) {
				wantStatus, wantCode := ep.status, ep.code
				switch {
				case c.role == "":
					wantStatus, wantCode = 401, "unauthenticated"
				case !slices.Contains(ep.allowed, c.role):
					wantStatus, wantCode = 403, "forbidden"
				}
				var r resp
				switch {
				case ep.path == "/v1/watch":
					r.status = dialWatch(t, an.srv.URL, c.token, c.b)
					if wantStatus == 101 {
						wantCode = ""
					}
					if r.status != wantStatus {
						t.Fatalf("got %d, want %d", r.status, wantStatus)
					}
					return
				case c.b != nil:
					r = c.b.do(t, ep.method, ep.path, bodyFor(ep.body, c.name), true)
				default:
					r = an.do(t, ep.method, ep.path, c.token, bodyFor(ep.body, c.name))
				}
				if r.status != wantStatus || r.errCode() != wantCode {
					t.Fatalf("got %d %s, want %d %q", r.status, r.body, wantStatus, wantCode)
				}
				if wantCode != "" && !isErrorShape(r.body) {
					t.Fatalf("not the JSON error shape: %s", r.body)
				}
			})
		}
	}
	if n := an.count(t); n != 2 {
		t.Fatalf("records: %d (only the operator's two creates may write)", n)
	}
}

func fixed(body string) func(string) string { return func(string) string { return body } }

func bodyFor(f func(string) string, caller string) string {
	if f == nil {
		return ""
	}
	return f(caller)
}

// isErrorShape reports whether body is exactly {"error":{"code","message"}}
// with both non-empty.
func isErrorShape(body string) bool {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	return dec.Decode(&e) == nil && e.Error != nil && e.Error.Code != "" && e.Error.Message != ""
}

// TestSessionCSRF: a signed-in practitioner's page must send the CSRF
// token with every write; the API token path needs none.
func TestSessionCSRF(t *testing.T) {
	an := newAuthedNode(t)
	b := an.login(t, "practitioner")
	post := func(csrf string) resp {
		req, _ := http.NewRequest("POST", an.srv.URL+"/v1/locate", strings.NewReader(`{"nhsNumber":"9990000018","purpose":"safeguarding"}`))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set(auth.CSRFHeader, csrf)
		}
		return send(t, b.c, req)
	}
	if r := post(""); r.status != 403 || r.errCode() != "csrf_missing" {
		t.Fatalf("no csrf: %d %s", r.status, r.body)
	}
	if r := post("wrong"); r.status != 403 || r.errCode() != "csrf_invalid" {
		t.Fatalf("wrong csrf: %d %s", r.status, r.body)
	}
	if r := post(b.csrf); r.status != 200 {
		t.Fatalf("with csrf: %d %s", r.status, r.body)
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

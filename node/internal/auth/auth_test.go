package auth

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// fakeClock is a settable clock for sessions and rate limits.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	alicePassword = "correct horse battery"
	olaPassword   = "operator password 1"
)

// fixture is an Authenticator with two users and one API token, behind a
// test server whose handlers count the requests that reach them.
type fixture struct {
	t       *testing.T
	a       *Authenticator
	clock   *fakeClock
	srv     *httptest.Server
	reached atomic.Int32
	token   string
	logins  atomic.Int32

	mu       sync.Mutex
	sessions []string // cookies and CSRF tokens handed out so far
}

// leakIn names the secret that an answer on path carries and must not
// ("" if none): a password or the API token never; a session's cookie or
// CSRF token only in the /v1/session answers that hand them to their own
// browser.
func (f *fixture) leakIn(path, answer string) string {
	for _, s := range []string{alicePassword, olaPassword, f.token} {
		if strings.Contains(answer, s) {
			return "a password or API token"
		}
	}
	if path == "/v1/session" {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		if strings.Contains(answer, s) {
			return "a session cookie or CSRF token"
		}
	}
	return ""
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock()}
	cfg := DefaultConfig()
	cfg.UsersPath = filepath.Join(t.TempDir(), UsersFileName)
	cfg.Argon2 = TestArgon2Params
	cfg.Now = f.clock.Now
	cfg.OnLogin = func(*http.Request, Principal, bool) { f.logins.Add(1) }
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	if _, err := a.Store().AddUser("alice", RolePractitioner, []byte(alicePassword)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store().AddUser("ola", RoleOperator, []byte(olaPassword)); err != nil {
		t.Fatal(err)
	}
	if f.token, _, err = a.Store().AddToken("case-system", RolePractitioner); err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.reached.Add(1)
		p, _ := PrincipalFrom(r.Context())
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"actor": p.Actor()})
	})
	mux := http.NewServeMux()
	mux.Handle("/v1/session", a.SessionHandler())
	mux.Handle("/v1/lookup", a.Protect(ok, RolePractitioner))
	mux.Handle("/v1/records", a.Protect(ok, RoleOperator))
	mux.Handle("/v1/any", a.Protect(ok))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

type resp struct {
	status int
	code   httpx.Code
	body   map[string]any
	header http.Header
	cookie *http.Cookie
}

// do sends a request with optional cookie, CSRF token, bearer token and
// extra headers.
func (f *fixture) do(method, path, body string, hdr map[string]string) resp {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Cookie" {
			req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: v})
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	r := resp{status: res.StatusCode, header: res.Header}
	raw, _ := io.ReadAll(res.Body)
	json.Unmarshal(raw, &r.body)
	var answer strings.Builder
	res.Header.Write(&answer)
	answer.Write(raw)
	if what := f.leakIn(path, answer.String()); what != "" {
		f.t.Errorf("%s %s: the answer contains %s", method, path, what)
	}
	if csrf, ok := r.body["csrfToken"].(string); ok && csrf != "" {
		f.mu.Lock()
		f.sessions = append(f.sessions, csrf)
		f.mu.Unlock()
	}
	if e, ok := r.body["error"].(map[string]any); ok {
		c, _ := e["code"].(string)
		r.code = httpx.Code(c)
		if m, _ := e["message"].(string); m == "" {
			f.t.Errorf("error %q has no message", r.code)
		}
	}
	for _, c := range res.Cookies() {
		if c.Name == DefaultCookieName {
			r.cookie = c
			if c.Value != "" {
				f.mu.Lock()
				f.sessions = append(f.sessions, c.Value)
				f.mu.Unlock()
			}
		}
	}
	return r
}

// TestFixtureFindsLeaks: the check every fixture answer goes through
// reports a planted secret.
func TestFixtureFindsLeaks(t *testing.T) {
	f := newFixture(t, nil)
	cookie, csrf := f.login("alice", alicePassword)
	for _, tc := range []struct{ path, answer, want string }{
		{"/v1/lookup", `{"actor":"token:case-system"}`, ""},
		{"/v1/session", `{"csrfToken":"` + csrf + `"}`, ""},
		{"/v1/lookup", `{"error":{"message":"bad token ` + f.token + `"}}`, "a password or API token"},
		{"/v1/session", `{"error":{"message":"wrong password ` + alicePassword + `"}}`, "a password or API token"},
		{"/v1/lookup", "X-Debug: " + cookie, "a session cookie or CSRF token"},
		{"/v1/records", `{"csrf":"` + csrf + `"}`, "a session cookie or CSRF token"},
	} {
		if got := f.leakIn(tc.path, tc.answer); got != tc.want {
			t.Errorf("%s %q: %q, want %q", tc.path, tc.answer, got, tc.want)
		}
	}
}

// login signs in and returns the cookie value and CSRF token.
func (f *fixture) login(user, password string) (string, string) {
	f.t.Helper()
	r := f.do("POST", "/v1/session", `{"username":"`+user+`","password":"`+password+`"}`, nil)
	if r.status != 200 || r.cookie == nil {
		f.t.Fatalf("login %s: %d %s", user, r.status, r.code)
	}
	return r.cookie.Value, r.body["csrfToken"].(string)
}

func TestLoginSetsSafeCookie(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Secure = true })
	r := f.do("POST", "/v1/session", `{"username":"alice","password":"`+alicePassword+`"}`, nil)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.code)
	}
	c := r.cookie
	if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Fatalf("cookie %+v", c)
	}
	if len(c.Value) < 43 {
		t.Errorf("session id too short: %d chars", len(c.Value))
	}
	user := r.body["user"].(map[string]any)
	if user["name"] != "alice" || user["role"] != "practitioner" || r.body["csrfToken"] == "" {
		t.Errorf("body %v", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("session response is cacheable")
	}
	// The map holds the hash of the id, never the id.
	f.a.mu.Lock()
	for k := range f.a.sessions {
		if strings.Contains(string(k[:]), c.Value) {
			t.Error("session map holds the cookie value")
		}
	}
	f.a.mu.Unlock()
	// GET /v1/session gives the CSRF token back after a reload.
	g := f.do("GET", "/v1/session", "", map[string]string{"Cookie": c.Value})
	if g.status != 200 || g.body["csrfToken"] != r.body["csrfToken"] {
		t.Errorf("GET session: %d %v", g.status, g.body)
	}
}

// TestSessionNamesAgencyAndPurposes: the session answer, at sign-in and
// after a reload, names the node's agency and the purposes this user may
// look up under, as the node decides them (here: practitioners get the
// node's purposes, other roles none); without a Purposes function the list
// is empty, never null.
func TestSessionNamesAgencyAndPurposes(t *testing.T) {
	agency := SessionAgency{NodeID: "riverside-school", Name: "Riverside Primary School", Category: "school"}
	for _, tc := range []struct {
		name     string
		purposes func(Principal) []string
		user     string
		password string
		want     []any
	}{
		{"practitioner", func(p Principal) []string {
			if p.Role == RolePractitioner {
				return []string{"safeguarding"}
			}
			return nil
		}, "alice", alicePassword, []any{"safeguarding"}},
		{"operator", func(p Principal) []string {
			if p.Role == RolePractitioner {
				return []string{"safeguarding"}
			}
			return nil
		}, "ola", olaPassword, []any{}},
		{"no purposes function", nil, "alice", alicePassword, []any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Agency = agency; c.Purposes = tc.purposes })
			r := f.do("POST", "/v1/session", `{"username":"`+tc.user+`","password":"`+tc.password+`"}`, nil)
			if r.status != 200 || r.cookie == nil {
				t.Fatalf("sign in: %d %s", r.status, r.code)
			}
			g := f.do("GET", "/v1/session", "", map[string]string{"Cookie": r.cookie.Value})
			for _, ans := range []resp{r, g} {
				want := map[string]any{"nodeId": agency.NodeID, "name": agency.Name, "category": agency.Category}
				if got, _ := ans.body["agency"].(map[string]any); !maps.Equal(got, want) {
					t.Errorf("agency %v, want %v", ans.body["agency"], want)
				}
				got, ok := ans.body["purposes"].([]any)
				if !ok || !slices.Equal(got, tc.want) {
					t.Errorf("purposes %#v, want %#v", ans.body["purposes"], tc.want)
				}
			}
		})
	}
}

// TestDenials is the denial table: each case gets its status and stable code,
// never reaches the handler, and leaves no session behind.
func TestDenials(t *testing.T) {
	f := newFixture(t, nil)
	cookie, csrf := f.login("alice", alicePassword)
	opCookie, opCSRF := f.login("ola", olaPassword)
	_ = opCSRF

	revokedTok, _, err := f.a.Store().AddToken("old-system", RolePractitioner)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.a.Store().RemoveToken("old-system"); err != nil {
		t.Fatal(err)
	}
	auditorTok, _, _ := f.a.Store().AddToken("audit-system", RoleAuditor)

	type req struct {
		method, path, body string
		hdr                map[string]string
	}
	tests := []struct {
		name       string
		req        req
		wantStatus int
		wantCode   httpx.Code
	}{
		{"no credentials", req{"POST", "/v1/lookup", `{}`, nil}, 401, httpx.CodeUnauthenticated},
		{"no credentials, GET", req{"GET", "/v1/any", "", nil}, 401, httpx.CodeUnauthenticated},
		{"garbage cookie", req{"POST", "/v1/lookup", `{}`, map[string]string{"Cookie": "not-a-session"}}, 401, httpx.CodeUnauthenticated},
		{"unknown session", req{"POST", "/v1/lookup", `{}`, map[string]string{"Cookie": strings.Repeat("A", 43)}}, 401, httpx.CodeUnauthenticated},
		{"unknown token", req{"POST", "/v1/lookup", `{}`, map[string]string{"Authorization": "Bearer spt_nope"}}, 401, httpx.CodeUnauthenticated},
		{"revoked token", req{"POST", "/v1/lookup", `{}`, map[string]string{"Authorization": "Bearer " + revokedTok}}, 401, httpx.CodeUnauthenticated},
		{"basic auth scheme", req{"POST", "/v1/lookup", `{}`, map[string]string{"Authorization": "Basic YWxpY2U6eA=="}}, 401, httpx.CodeUnauthenticated},
		{"wrong role, session", req{"POST", "/v1/records", `{}`, map[string]string{"Cookie": cookie, CSRFHeader: csrf}}, 403, httpx.CodeForbidden},
		{"wrong role, token", req{"POST", "/v1/lookup", `{}`, map[string]string{"Authorization": "Bearer " + auditorTok}}, 403, httpx.CodeForbidden},
		{"operator on practitioner endpoint", req{"GET", "/v1/lookup", "", map[string]string{"Cookie": opCookie}}, 403, httpx.CodeForbidden},
		{"CSRF missing", req{"POST", "/v1/lookup", `{}`, map[string]string{"Cookie": cookie}}, 403, httpx.CodeCSRFMissing},
		{"CSRF wrong", req{"POST", "/v1/lookup", `{}`, map[string]string{"Cookie": cookie, CSRFHeader: "x" + csrf}}, 403, httpx.CodeCSRFInvalid},
		{"CSRF of another session", req{"POST", "/v1/lookup", `{}`, map[string]string{"Cookie": cookie, CSRFHeader: opCSRF}}, 403, httpx.CodeCSRFInvalid},
		{"CSRF on DELETE", req{"DELETE", "/v1/lookup", "", map[string]string{"Cookie": cookie}}, 403, httpx.CodeCSRFMissing},
		{"cross-site origin", req{"POST", "/v1/lookup", `{}`, map[string]string{"Cookie": cookie, CSRFHeader: csrf, "Origin": "https://evil.example"}}, 403, httpx.CodeOriginForbidden},
		{"logout without CSRF", req{"DELETE", "/v1/session", "", map[string]string{"Cookie": cookie}}, 403, httpx.CodeCSRFMissing},
		{"login wrong password", req{"POST", "/v1/session", `{"username":"alice","password":"wrong password!"}`, nil}, 401, httpx.CodeUnauthenticated},
		{"login unknown user", req{"POST", "/v1/session", `{"username":"mallory","password":"whatever12345"}`, nil}, 401, httpx.CodeUnauthenticated},
		{"login as form", req{"POST", "/v1/session", `username=alice`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, httpx.CodeUnsupportedType},
		{"login extra field", req{"POST", "/v1/session", `{"username":"alice","password":"x","admin":true}`, nil}, 400, httpx.CodeBadRequest},
		{"login cross-site", req{"POST", "/v1/session", `{"username":"alice","password":"` + alicePassword + `"}`, map[string]string{"Origin": "https://evil.example"}}, 403, httpx.CodeOriginForbidden},
		{"session method", req{"PUT", "/v1/session", "", nil}, 405, httpx.CodeMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, sessions := f.reached.Load(), f.a.SessionCount()
			r := f.do(tt.req.method, tt.req.path, tt.req.body, tt.req.hdr)
			if r.status != tt.wantStatus || r.code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q", r.status, r.code, tt.wantStatus, tt.wantCode)
			}
			if f.reached.Load() != before {
				t.Error("the denied request reached the handler")
			}
			if f.a.SessionCount() != sessions {
				t.Error("the denied request changed the sessions")
			}
			if r.cookie != nil {
				t.Error("the denied request set a cookie")
			}
			raw, _ := json.Marshal(r.body)
			for _, secret := range []string{alicePassword, olaPassword, csrf, cookie, revokedTok, "wrong password!"} {
				if strings.Contains(string(raw), secret) {
					t.Errorf("response body echoes a secret")
				}
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowedOrigins = []string{"https://node.example"} })
	cookie, csrf := f.login("alice", alicePassword)
	tests := []struct {
		name  string
		path  string
		hdr   map[string]string
		actor string
	}{
		{"session with CSRF", "/v1/lookup", map[string]string{"Cookie": cookie, CSRFHeader: csrf}, "user:alice"},
		{"session with CSRF and allowed origin", "/v1/lookup", map[string]string{"Cookie": cookie, CSRFHeader: csrf, "Origin": "https://node.example"}, "user:alice"},
		{"token needs no CSRF", "/v1/lookup", map[string]string{"Authorization": "Bearer " + f.token}, "token:case-system"},
		{"token wins over a cookie", "/v1/lookup", map[string]string{"Authorization": "Bearer " + f.token, "Cookie": cookie}, "token:case-system"},
		{"any role", "/v1/any", map[string]string{"Cookie": cookie, CSRFHeader: csrf}, "user:alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do("POST", tt.path, `{}`, tt.hdr)
			if r.status != 200 || r.body["actor"] != tt.actor {
				t.Fatalf("got %d %v", r.status, r.body)
			}
		})
	}
	// Safe methods need no CSRF token.
	if r := f.do("GET", "/v1/lookup", "", map[string]string{"Cookie": cookie}); r.status != 200 {
		t.Fatalf("GET with cookie: %d %s", r.status, r.code)
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.SessionIdle = 10 * time.Minute
		c.SessionMax = 30 * time.Minute
	})
	get := func(cookie string) resp { return f.do("GET", "/v1/any", "", map[string]string{"Cookie": cookie}) }

	cookie, _ := f.login("alice", alicePassword)
	f.clock.Advance(9 * time.Minute)
	if r := get(cookie); r.status != 200 {
		t.Fatalf("within idle time: %d", r.status)
	}
	f.clock.Advance(10 * time.Minute) // idle exactly 10 minutes since last use
	if r := get(cookie); r.status != 401 || r.code != httpx.CodeSessionExpired {
		t.Fatalf("after idle time: %d %s", r.status, r.code)
	}
	if r := get(cookie); r.code != httpx.CodeUnauthenticated {
		t.Fatalf("expired session is forgotten: %s", r.code)
	}

	// Absolute expiry, however busy the session.
	cookie, _ = f.login("alice", alicePassword)
	for i := 0; i < 5; i++ {
		f.clock.Advance(5 * time.Minute)
		if r := get(cookie); r.status != 200 {
			t.Fatalf("busy session at %d min: %d", 5*(i+1), r.status)
		}
	}
	f.clock.Advance(5 * time.Minute)
	if r := get(cookie); r.code != httpx.CodeSessionExpired {
		t.Fatalf("after absolute time: %d %s", r.status, r.code)
	}
}

func TestLogoutAndRemovedUser(t *testing.T) {
	f := newFixture(t, nil)
	cookie, csrf := f.login("alice", alicePassword)
	r := f.do("DELETE", "/v1/session", "", map[string]string{"Cookie": cookie, CSRFHeader: csrf})
	if r.status != 204 || r.cookie == nil || r.cookie.MaxAge >= 0 {
		t.Fatalf("logout: %d cookie %+v", r.status, r.cookie)
	}
	if r := f.do("GET", "/v1/any", "", map[string]string{"Cookie": cookie}); r.status != 401 {
		t.Fatalf("after logout: %d", r.status)
	}

	cookie, _ = f.login("alice", alicePassword)
	if err := f.a.Store().RemoveUser("alice"); err != nil {
		t.Fatal(err)
	}
	if r := f.do("GET", "/v1/any", "", map[string]string{"Cookie": cookie}); r.status != 401 {
		t.Fatalf("removed user's session still works: %d", r.status)
	}
}

func TestLoginRateLimited(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.LoginRate = 1.0 / 60
		c.LoginBurst = 3
	})
	for i := 0; i < 3; i++ {
		if r := f.do("POST", "/v1/session", `{"username":"alice","password":"wrong password!"}`, nil); r.status != 401 {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
	}
	r := f.do("POST", "/v1/session", `{"username":"alice","password":"`+alicePassword+`"}`, nil)
	if r.status != 429 || r.code != httpx.CodeRateLimited || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th attempt: %d %s retry %q", r.status, r.code, r.header.Get("Retry-After"))
	}
	if f.a.SessionCount() != 0 {
		t.Fatal("a rate-limited login made a session")
	}
	f.clock.Advance(time.Minute)
	if r := f.do("POST", "/v1/session", `{"username":"alice","password":"`+alicePassword+`"}`, nil); r.status != 200 {
		t.Fatalf("after a minute: %d %s", r.status, r.code)
	}
	if f.logins.Load() != 4 {
		t.Errorf("OnLogin called %d times, want 4 (3 failures, 1 success; not for rate-limited)", f.logins.Load())
	}
}

func TestIdentifyAndCheckCSRF(t *testing.T) {
	f := newFixture(t, nil)
	cookie, csrf := f.login("alice", alicePassword)
	r := httptest.NewRequest("POST", "/v1/lookup", nil)
	r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: cookie})
	p, err := f.a.Identify(r)
	if err != nil || p.Name != "alice" || !p.ViaSession() {
		t.Fatalf("Identify: %+v %v", p, err)
	}
	if err := f.a.CheckCSRF(r, p); !errors.Is(err, ErrCSRFMissing) {
		t.Fatalf("no header: %v", err)
	}
	r.Header.Set(CSRFHeader, csrf+"x")
	if err := f.a.CheckCSRF(r, p); !errors.Is(err, ErrCSRFInvalid) {
		t.Fatalf("wrong header: %v", err)
	}
	r.Header.Set(CSRFHeader, csrf)
	if err := f.a.CheckCSRF(r, p); err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Origin", "https://evil.example")
	if err := f.a.CheckCSRF(r, p); !errors.Is(err, ErrOrigin) {
		t.Fatalf("cross origin: %v", err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.a.Identify(r); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := f.a.Identify(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("anonymous: %v", err)
	}
}

func TestOriginAllowed(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		origin  string
		allowed []string
		want    bool
	}{
		{"no origin (not a browser)", "node:8443", "", nil, true},
		{"same origin", "node:8443", "https://node:8443", nil, true},
		{"same host other port", "node:8443", "https://node:9999", nil, false},
		{"other host", "node:8443", "https://evil.example", nil, false},
		{"null origin", "node:8443", "null", nil, false},
		{"on the list", "node:8443", "https://portal.example", []string{"https://portal.example"}, true},
		{"list replaces same-origin", "node:8443", "https://node:8443", []string{"https://portal.example"}, false},
		{"scheme matters", "node:8443", "http://portal.example", []string{"https://portal.example"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/watch", nil)
			r.Host = tt.host
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if got := OriginAllowed(r, tt.allowed); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no users path", func(c *Config) { c.UsersPath = "" }},
		{"idle over max", func(c *Config) { c.SessionIdle, c.SessionMax = time.Hour, time.Minute }},
		{"bad origin", func(c *Config) { c.AllowedOrigins = []string{"node.example"} }},
		{"origin with path", func(c *Config) { c.AllowedOrigins = []string{"https://node.example/x"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.UsersPath = filepath.Join(t.TempDir(), UsersFileName)
			cfg.Argon2 = TestArgon2Params
			tt.mod(&cfg)
			if _, err := New(cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// New does not mutate the caller's config.
	cfg := Config{UsersPath: filepath.Join(t.TempDir(), UsersFileName), Argon2: TestArgon2Params, AllowedOrigins: []string{"https://a.example"}}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.cfg.AllowedOrigins[0] = "changed"
	if cfg.SessionIdle != 0 || cfg.AllowedOrigins[0] != "https://a.example" {
		t.Fatal("New changed or aliased the caller's config")
	}
	if _, err := os.Stat(cfg.UsersPath); !os.IsNotExist(err) {
		t.Fatal("New created the users file before any change")
	}
}

// TestSessionsHammer signs in, uses and signs out sessions from many
// goroutines at once while a user is removed and re-added; run with -race.
func TestSessionsHammer(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LoginRate, c.LoginBurst = 1000, 1000 })
	var used atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				r := f.do("POST", "/v1/session", `{"username":"ola","password":"`+olaPassword+`"}`, nil)
				if r.status != 200 {
					t.Errorf("login: %d %s", r.status, r.code)
					return
				}
				c, csrf := r.cookie.Value, r.body["csrfToken"].(string)
				if g := f.do("POST", "/v1/records", `{}`, map[string]string{"Cookie": c, CSRFHeader: csrf}); g.status != 200 {
					t.Errorf("use: %d %s", g.status, g.code)
				}
				used.Add(1)
				f.do("DELETE", "/v1/session", "", map[string]string{"Cookie": c, CSRFHeader: csrf})
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 3; i++ {
			f.a.Store().RemoveUser("alice")
			f.a.Store().AddUser("alice", RolePractitioner, []byte(alicePassword))
		}
	}()
	wg.Wait()
	if n := f.a.SessionCount(); n != 0 {
		t.Errorf("%d sessions left after every goroutine signed out", n)
	}
	if used.Load() != 30 {
		t.Errorf("%d sessions used, want 30", used.Load())
	}
}

// TestMain fails the run if a goroutine outlives the tests (the
// concurrency tests sign in and spend from many goroutines).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// TestTokenQuotaReachesPrincipal: an API token's own daily lookup quota
// (Store.SetTokenQuota) is on the principal the node is handed; a
// negative one is refused, an unknown token is ErrNotFound.
func TestTokenQuotaReachesPrincipal(t *testing.T) {
	f := newFixture(t, nil)
	identify := func() Principal {
		t.Helper()
		r := httptest.NewRequest("POST", "/v1/lookup", nil)
		r.Header.Set("Authorization", "Bearer "+f.token)
		p, err := f.a.Identify(r)
		if err != nil || p.Kind != KindToken {
			t.Fatalf("Identify: %+v %v", p, err)
		}
		return p
	}
	if p := identify(); p.DailyLookups != 0 {
		t.Fatalf("default: %d", p.DailyLookups)
	}
	if err := f.a.Store().SetTokenQuota("case-system", 5000); err != nil {
		t.Fatal(err)
	}
	if p := identify(); p.DailyLookups != 5000 {
		t.Fatalf("set: %d", p.DailyLookups)
	}
	if err := f.a.Store().SetTokenQuota("case-system", -1); err == nil {
		t.Fatal("a negative quota was set")
	}
	if err := f.a.Store().SetTokenQuota("nobody", 5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
}

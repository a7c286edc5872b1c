package edge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/stack"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// The tests run the real client (the real module under wazero) against a
// real demo federation, started once for the package: four nodes, t = 2 of
// 3 issuers, synthetic people in the 999 range.

var demo struct {
	once sync.Once
	d    *stack.Demo
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if demo.d != nil {
		if err := demo.d.Shutdown(context.Background()); err != nil && code == 0 {
			fmt.Fprintln(os.Stderr, "demo shutdown:", err)
			code = 1
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if demo.dir != "" {
		os.RemoveAll(demo.dir)
	}
	os.Exit(testutil.NoLeaks(code))
}

// home is the demo node the client asks: it holds records itself, so the
// tests see "self" left out.
const home = "northshire-csc"

const purpose = "safeguarding"

func startDemo(t *testing.T) *stack.Demo {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a demo federation")
	}
	demo.once.Do(func() {
		if demo.dir, demo.err = os.MkdirTemp("", "signpost-edge-test"); demo.err != nil {
			return
		}
		p := auth.TestArgon2Params
		demo.d, demo.err = stack.StartDemo(context.Background(), stack.DemoConfig{Dir: demo.dir, People: 20, Argon2: &p})
	})
	if demo.err != nil {
		t.Fatal(demo.err)
	}
	return demo.d
}

// nodeURL is the base URL of the demo's home node.
func nodeURL(d *stack.Demo) string {
	for i, a := range stack.DemoAgencies {
		if a.NodeID == home {
			return "http://" + d.Stacks[i].Addr.String()
		}
	}
	panic("no home node")
}

// recorder is a reverse proxy in front of a node that keeps every byte of
// every request the client sends, and can answer some requests itself
// (inject) instead of the node.
type recorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	seen   [][]byte       // each request, as it was on the wire
	calls  map[string]int // requests by path
	elems  int            // blinded elements sent to evaluate
	inject func(path string, n int) (status int, retryAfter, code string)
}

func newRecorder(t *testing.T, target string) *recorder {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{calls: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		dump, err := httputil.DumpRequest(req, true)
		if err != nil {
			t.Error(err)
		}
		var body struct {
			Blinded []string `json:"blinded"`
		}
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		json.Unmarshal(b, &body)
		r.mu.Lock()
		r.seen = append(r.seen, dump)
		r.calls[req.URL.Path]++
		n := r.calls[req.URL.Path]
		if req.URL.Path == "/v1/tokens/evaluate" {
			r.elems += len(body.Blinded)
		}
		inject := r.inject
		r.mu.Unlock()
		if inject != nil {
			if status, ra, code := inject(req.URL.Path, n); status != 0 {
				if ra != "" {
					w.Header().Set("Retry-After", ra)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"error":{"code":%q,"message":"injected"}}`, code)
				return
			}
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// sleeps is a fake clock's waits: it records each and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

type result struct {
	code           int
	stdout, stderr string
}

// locate runs `signpost locate` in process with the home node's
// practitioner token in the environment, a fake clock, and a frozen wall
// clock.
func locate(t *testing.T, d *stack.Demo, sl *sleeps, stdin string, args ...string) result {
	t.Helper()
	return runCLI(context.Background(), d.PractitionerTokens[home], sl, stdin, args...)
}

// runCLI runs `signpost locate` in process with token in the environment,
// a fake clock (sl, or one of its own), a frozen wall clock and the module
// compiled in memory (once for the test binary).
func runCLI(ctx context.Context, token string, sl *sleeps, stdin string, args ...string) result {
	if sl == nil {
		sl = &sleeps{}
	}
	env := map[string]string{TokenEnv: token}
	h := hooks{getenv: func(k string) string { return env[k] }, sleep: sl.sleep, isTerminal: func(io.Writer) bool { return false },
		now: func() time.Time { return time.Unix(1_800_000_000, 0) }}
	var out, errb bytes.Buffer
	code := locateMain(ctx, append([]string{"--wasm-cache", "off"}, args...), strings.NewReader(stdin), &out, &errb, h)
	return result{code, out.String(), errb.String()}
}

// inputs are the test's lines: the demo's people (some held by others,
// some by home alone, some by nobody), one in spaced form, numbers nobody
// holds, and invalid lines between them.
func inputs(t *testing.T, d *stack.Demo) []string {
	t.Helper()
	var lines []string
	held := map[string]bool{}
	for _, p := range d.People {
		held[p.NHSNumber] = true
		lines = append(lines, p.NHSNumber)
	}
	lines = append(lines, d.People[1].NHSNumber[:3]+" "+d.People[1].NHSNumber[3:6]+" "+d.People[1].NHSNumber[6:])
	for _, n := range wasm.GenerateTestNumbers(testutil.Seed(t), 40) {
		if !held[n] && len(lines) < 32 {
			lines = append(lines, n)
		}
	}
	wrong := []byte(d.People[0].NHSNumber)
	wrong[9] = '0' + (wrong[9]-'0'+1)%10 // a wrong check digit
	// Invalid lines in the middle: they must not stop the run.
	return slices.Insert(lines, 5, string(wrong), "12345", "", "999-abc")
}

// locateAPI is POST /v1/locate's answer for a number.
type locateAPI struct {
	Holders   []Holder `json:"holders"`
	SelfHolds bool     `json:"selfHolds"`
	Error     *struct {
		Code string `json:"code"`
	} `json:"error"`
}

func callLocate(t *testing.T, d *stack.Demo, number string) (int, locateAPI) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"nhsNumber": number, "purpose": purpose})
	req, _ := http.NewRequest(http.MethodPost, nodeURL(d)+"/v1/locate", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.PractitionerTokens[home])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out locateAPI
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func parseJSONLines(t *testing.T, s string) []jsonLine {
	t.Helper()
	var out []jsonLine
	for l := range strings.Lines(s) {
		var j jsonLine
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		out = append(out, j)
	}
	return out
}

// TestLocateMatchesAPI: every output line says what POST /v1/locate says
// for the same input — the same holders (home left out), the same
// selfHolds — and invalid lines are reported in place without stopping the
// run; no number, in any encoding, is in any request the client sent.
func TestLocateMatchesAPI(t *testing.T) {
	d := startDemo(t)
	rec := newRecorder(t, nodeURL(d))
	lines := inputs(t, d)
	r := locate(t, d, nil, strings.Join(lines, "\n")+"\n", "--node", rec.srv.URL, "--purpose", purpose, "--json")
	if r.code != 1 { // invalid lines: exit 1, as ident validate
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	rec.mu.Lock()
	if rec.calls["/v1/tokens/evaluate"] == 0 || rec.calls["/v1/lookup"] == 0 {
		t.Errorf("requests seen: %v", rec.calls)
	}
	checkNoNumber(t, rec.seen, lines)
	rec.mu.Unlock()

	got := parseJSONLines(t, r.stdout)
	if len(got) != len(lines) {
		t.Fatalf("%d output lines for %d inputs", len(got), len(lines))
	}
	var found, none, self, invalid int
	for i, line := range lines {
		g := got[i]
		if g.N != i+1 {
			t.Errorf("output %d is for line %d", i+1, g.N)
		}
		status, want := callLocate(t, d, line)
		if status != http.StatusOK {
			if g.Status != StatusInvalid || want.Error == nil || want.Error.Code != "invalid_nhs_number" || g.Reason == "" || g.Code == "" {
				t.Errorf("line %d: locate answered %d %+v, the client %+v", i+1, status, want.Error, g.Line)
			}
			invalid++
			continue
		}
		wantStatus := StatusNone
		if len(want.Holders) > 0 {
			wantStatus = StatusFound
		}
		if g.Status != wantStatus || g.SelfHolds != want.SelfHolds || !holdersEqual(g.Holders, want.Holders) {
			t.Errorf("line %d: the client says %+v, POST /v1/locate %+v", i+1, g.Line, want)
		}
		if g.Status == StatusFound {
			found++
		} else {
			none++
		}
		if g.SelfHolds {
			self++
		}
	}
	if found == 0 || none == 0 || self == 0 || invalid != 4 {
		t.Fatalf("the inputs do not cover the cases: %d found, %d none, %d held by home, %d invalid", found, none, self, invalid)
	}

	// The plain output says the same, one line each.
	plain := locate(t, d, nil, strings.Join(lines, "\n"), "--node", rec.srv.URL, "--purpose", purpose)
	pl := strings.Split(strings.TrimSuffix(plain.stdout, "\n"), "\n")
	if len(pl) != len(lines) {
		t.Fatalf("%d plain lines for %d inputs", len(pl), len(lines))
	}
	for i, g := range got {
		want := string(g.Status)
		for _, h := range g.Holders {
			want += "\t" + h.Agency
		}
		if g.Status == StatusInvalid {
			want += "\t" + g.Code + "\t" + g.Reason
		}
		if pl[i] != want {
			t.Errorf("plain line %d = %q, want %q", i+1, pl[i], want)
		}
	}

}

func holdersEqual(a, b []Holder) bool {
	return slices.EqualFunc(a, b, func(x, y Holder) bool {
		return x.NodeID == y.NodeID && x.Agency == y.Agency && x.Category == y.Category && x.Since.Equal(y.Since)
	})
}

// checkNoNumber fails if any request holds an input in any form: as given,
// its digits, spaced 3-3-4, and the base64 (every alphabet, padded or not,
// at each of the three byte alignments) of each.
func checkNoNumber(t *testing.T, requests [][]byte, lines []string) {
	t.Helper()
	all := bytes.Join(requests, []byte("\n"))
	for _, line := range lines {
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, line)
		if len(digits) < 5 {
			continue // too short to find by chance-free search ("12345" is checked as given below)
		}
		forms := []string{line, digits}
		if len(digits) == 10 {
			forms = append(forms, digits[:3]+" "+digits[3:6]+" "+digits[6:], digits[:3]+"-"+digits[3:6]+"-"+digits[6:])
		}
		for _, f := range slices.Clone(forms) {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
				for shift := range 3 {
					// The base64 of f inside a longer string, at each alignment:
					// its middle characters do not depend on the neighbours.
					s := enc.EncodeToString(append(bytes.Repeat([]byte{0}, shift), f...))
					inner := s[4:max(4, len(s)-4)]
					if len(inner) >= 8 {
						forms = append(forms, inner)
					}
				}
			}
		}
		for _, f := range forms {
			if bytes.Contains(all, []byte(f)) {
				t.Errorf("a request holds an input (line %q) as %q", line, f)
			}
		}
	}
}

// TestResume: a run that stopped after some lines, started again with the
// whole input and the same resume file, does only the rest — no request
// for the finished lines — and its output is the rest of a whole run's; an
// edited line is done again; the file never holds a number.
func TestResume(t *testing.T) {
	d := startDemo(t)
	lines := inputs(t, d)
	whole := parseJSONLines(t, locate(t, d, nil, strings.Join(lines, "\n"), "--node", nodeURL(d), "--purpose", purpose, "--json").stdout)
	path := filepath.Join(t.TempDir(), "resume")

	const k = 13 // the first run "was interrupted" after k lines
	first := locate(t, d, nil, strings.Join(lines[:k], "\n"), "--node", nodeURL(d), "--purpose", purpose, "--json", "--resume", path)
	if got := parseJSONLines(t, first.stdout); len(got) != k {
		t.Fatalf("first run: %d lines, want %d", len(got), k)
	}
	rec := newRecorder(t, nodeURL(d))
	second := locate(t, d, nil, strings.Join(lines, "\n"), "--node", rec.srv.URL, "--purpose", purpose, "--json", "--resume", path)
	got := parseJSONLines(t, second.stdout)
	if !slices.EqualFunc(got, whole[k:], jsonLineEqual) {
		t.Fatalf("second run printed\n%v\nwant the rest of a whole run\n%v", got, whole[k:])
	}
	validRest := 0
	for _, w := range whole[k:] {
		if w.Status != StatusInvalid {
			validRest++
		}
	}
	if rec.elems != validRest {
		t.Errorf("second run sent %d blinded elements; %d valid lines were left", rec.elems, validRest)
	}
	if !strings.Contains(second.stderr, fmt.Sprintf("%d skipped", k)) {
		t.Errorf("stderr does not say %d lines were skipped:\n%s", k, second.stderr)
	}

	// Everything is done now: a third run prints nothing; with line 3
	// edited, that line alone.
	if third := locate(t, d, nil, strings.Join(lines, "\n"), "--node", nodeURL(d), "--purpose", purpose, "--resume", path); third.stdout != "" || third.code != 0 {
		t.Errorf("a finished input printed %q (exit %d)", third.stdout, third.code)
	}
	edited := slices.Clone(lines)
	edited[2] = lines[0]
	fourth := parseJSONLines(t, locate(t, d, nil, strings.Join(edited, "\n"), "--node", nodeURL(d), "--purpose", purpose, "--json", "--resume", path).stdout)
	if len(fourth) != 1 || fourth[0].N != 3 || !jsonLineEqual(jsonLine{N: 3, Line: whole[0].Line}, fourth[0]) {
		t.Errorf("an edited line 3 gave %v, want line 3 answered as line 1", fourth)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkNoNumber(t, [][]byte{data}, lines)
}

func jsonLineEqual(a, b jsonLine) bool {
	return a.N == b.N && a.Status == b.Status && a.SelfHolds == b.SelfHolds && a.Code == b.Code && a.Reason == b.Reason && holdersEqual(a.Holders, b.Holders)
}

// TestRetry: a 429 is waited out for as long as its Retry-After says (on
// evaluate and on lookup) and the answers are as without it; a 503
// issuers_unavailable is retried with back-off and then fails its batch's
// lines, which the run reports (and does not record as finished) while it
// goes on with the others.
func TestRetry(t *testing.T) {
	d := startDemo(t)
	lines := inputs(t, d)[:10]
	clean := locate(t, d, nil, strings.Join(lines, "\n"), "--node", nodeURL(d), "--purpose", purpose, "--json")

	t.Run("429", func(t *testing.T) {
		rec := newRecorder(t, nodeURL(d))
		rec.inject = func(path string, n int) (int, string, string) {
			if n <= 2 { // the first two calls of each endpoint
				return http.StatusTooManyRequests, "7", "rate_limited"
			}
			return 0, "", ""
		}
		sl := &sleeps{}
		r := locate(t, d, sl, strings.Join(lines, "\n"), "--node", rec.srv.URL, "--purpose", purpose, "--json")
		if r.stdout != clean.stdout || r.code != clean.code {
			t.Errorf("with 429s the output is\n%s\nwant\n%s", r.stdout, clean.stdout)
		}
		if want := slices.Repeat([]time.Duration{7 * time.Second}, 4); !slices.Equal(sl.d, want) {
			t.Errorf("waited %v, want %v", sl.d, want)
		}
	})

	t.Run("503", func(t *testing.T) {
		rec := newRecorder(t, nodeURL(d))
		rec.inject = func(path string, n int) (int, string, string) {
			if path == "/v1/tokens/evaluate" {
				return http.StatusServiceUnavailable, "", "issuers_unavailable"
			}
			return 0, "", ""
		}
		sl := &sleeps{}
		resume := filepath.Join(t.TempDir(), "resume")
		r := locate(t, d, sl, strings.Join(lines, "\n"), "--node", rec.srv.URL, "--purpose", purpose, "--json", "--resume", resume)
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(sl.d, want) {
			t.Errorf("waited %v, want %v", sl.d, want)
		}
		got := parseJSONLines(t, r.stdout)
		want := parseJSONLines(t, clean.stdout)
		if len(got) != len(want) {
			t.Fatalf("%d lines for %d", len(got), len(want))
		}
		for i := range got {
			if want[i].Status == StatusInvalid {
				if !jsonLineEqual(got[i], want[i]) {
					t.Errorf("line %d: %+v, want %+v", i+1, got[i], want[i])
				}
			} else if got[i].Status != StatusFailed || got[i].Code != "issuers_unavailable" {
				t.Errorf("line %d: %+v, want failed issuers_unavailable", i+1, got[i])
			}
		}
		// Only the invalid lines are finished: a run without the outage
		// does the failed ones.
		again := parseJSONLines(t, locate(t, d, nil, strings.Join(lines, "\n"), "--node", nodeURL(d), "--purpose", purpose, "--json", "--resume", resume).stdout)
		var redo []jsonLine
		for _, w := range want {
			if w.Status != StatusInvalid {
				redo = append(redo, w)
			}
		}
		if !slices.EqualFunc(again, redo, jsonLineEqual) {
			t.Errorf("after the outage: %v, want %v", again, redo)
		}
	})
}

// TestUsage: the token never comes from a flag; a token file open to
// others is refused; missing flags are usage errors (exit 2).
func TestUsage(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	closed := filepath.Join(dir, "closed")
	os.WriteFile(open, []byte("tok\n"), 0o644)
	os.WriteFile(closed, []byte("tok\n"), 0o600)
	os.Chmod(open, 0o644) // whatever the umask
	for _, tc := range []struct {
		name string
		env  string
		args []string
		code int
		err  string
	}{
		{"no node", "tok", []string{"--purpose", purpose}, 2, "--node URL and --purpose P are required"},
		{"no purpose", "tok", []string{"--node", "http://x"}, 2, "are required"},
		{"no token", "", []string{"--node", "http://x", "--purpose", purpose}, 2, "no API token"},
		{"token flag", "tok", []string{"--node", "http://x", "--purpose", purpose, "--token", "tok"}, 2, "flag provided but not defined"},
		{"open token file", "", []string{"--node", "http://x", "--purpose", purpose, "--token-file", open}, 2, "open to other users"},
		{"bad url", "", []string{"--node", "x", "--purpose", purpose, "--token-file", closed, "--wasm-cache", "off"}, 2, "http:// or https://"},
		{"help", "", []string{"-h"}, 0, "Usage: signpost locate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := defaultHooks()
			h.getenv = func(k string) string {
				if k == TokenEnv {
					return tc.env
				}
				return ""
			}
			var out, errb bytes.Buffer
			code := locateMain(context.Background(), tc.args, strings.NewReader(""), &out, &errb, h)
			if code != tc.code || !strings.Contains(errb.String(), tc.err) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tc.code, tc.err)
			}
		})
	}
	if tok, err := readToken(closed, func(string) string { return "" }); err != nil || tok != "tok" {
		t.Errorf("readToken(mode 600) = %q, %v", tok, err)
	}
}

// TestProgress: the bar is drawn at most every 200 ms, always at the end,
// and says how far the run is.
func TestProgress(t *testing.T) {
	var b bytes.Buffer
	now := time.Unix(0, 0)
	p := &progress{w: &b, now: func() time.Time { return now }}
	start := now
	now = now.Add(time.Second)
	p.show(100, 1000, start)
	now = now.Add(100 * time.Millisecond)
	p.show(200, 1000, start) // too soon: not drawn
	now = now.Add(900 * time.Millisecond)
	p.show(1000, 1000, start)
	want := "\r[###...........................] 100/1000 lines  10%  100/s " +
		"\r[##############################] 1000/1000 lines 100%  500/s "
	if b.String() != want {
		t.Errorf("bar drawn as\n%q\nwant\n%q", b.String(), want)
	}
}

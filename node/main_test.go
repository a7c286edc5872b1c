package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/wasm"
)

// TestMain runs the tests, then the leak scanner over everything the run
// produced: every log line (the test nodes' loggers, slog's default and the
// log package all write to testLogs) and every HTTP answer a test received
// (http.DefaultTransport records them, and fakePeers records node-to-node
// answers). No log line may contain an NHS number, an API token or any
// secret the tests created (see leaks); no answer may either, except a
// lookup key in the answer to the caller who sent its number or the key
// itself, and a session's own cookie and CSRF token in the sign-in answer.
//
// With SIGNPOST_LEAKSCAN_PLANT set, a seal key is planted in a log line and
// an answer before the tests run, so that the run must fail
// (TestLeakScannerFailsTheRun).
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		// A benchmark creates secrets by the hundred thousand (a 10^5-row
		// import); the scanner is for the test suite's traffic.
		fmt.Fprintln(os.Stderr, "leak scanner: off while benchmarks run")
		os.Exit(m.Run())
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	http.DefaultTransport = &recordingTransport{base: http.DefaultTransport}
	noteTokens = func(numbers []string, toks []wasm.Token) {
		for i, tk := range toks {
			leaks.noteKey(kindToken, tk.Token, numbers[i])
			leaks.noteKey(kindLookup, tk.LookupKey[:], numbers[i])
			leaks.noteKey(kindSeal, tk.SealKey[:], numbers[i])
		}
	}
	noteStackSecrets = func(sc StackConfig, dataDir string, holder [32]byte) {
		leaks.noteKey(kindHolder, holder[:], "")
		if sc.Credentials != nil {
			leaks.noteNodeKey(sc.Credentials.PrivateKey)
		}
		for _, k := range sc.GossipKeys {
			leaks.noteKey(kindGossip, k, "")
		}
		leaks.noteKey(kindIssuer, sc.IssuerPrivateKey, "")
		leaks.noteAuditKey(filepath.Join(dataDir, audit.FileName))
	}
	if os.Getenv(plantEnv) != "" {
		plantLeak()
	}
	code := m.Run()
	if code == 0 {
		if fs := leaks.scan(testLogs.String(), recorded.all()); len(fs) > 0 {
			for _, f := range fs {
				fmt.Fprintln(os.Stderr, "leak scanner:", f)
			}
			code = 1
		}
	}
	os.Exit(code)
}

// plantEnv makes TestMain plant a leak (the scanner's self-test).
const plantEnv = "SIGNPOST_LEAKSCAN_PLANT"

// plantLeak logs a seal key the way a careless handler would, and records
// an answer that carries one, through the same paths real tests use.
func plantLeak() {
	ks, _ := (&fakeTokenizer{}).Keys(context.Background(), "safeguarding", []string{"9990000018"})
	slog.Error("publish failed", "seal", hex.EncodeToString(ks[0].Seal[:]))
	recorded.add(exchange{method: "POST", path: "/v1/lookup", response: `{"entries":[],"k":"` + base64.StdEncoding.EncodeToString(ks[0].Seal[:]) + `"}`})
}

// Kinds of secret the scanner knows.
const (
	kindNHS      = "NHS number"
	kindAPIToken = "API token"
	kindToken    = "OPRF token"
	kindLookup   = "lookup key"
	kindSeal     = "seal key"
	kindIssuer   = "issuer key"
	kindNodeKey  = "node key"
	kindHolder   = "holder secret"
	kindGossip   = "gossip key"
	kindAudit    = "audit key"
	kindSession  = "session cookie"
	kindCSRF     = "CSRF token"
	kindPassword = "password"
)

// secret is one registered value and every encoding it could leak in.
type secret struct {
	kind string
	// origin is the canonical NHS number the secret derives from ("" if
	// none): the caller who sent that number may see its lookup key.
	origin string
	encs   []string
}

// leakScanner holds the registered secrets. Safe for concurrent use.
type leakScanner struct {
	mu sync.Mutex
	// byEnc holds encodings made only of base64/hex characters and at
	// least minRun long: they are found by sliding over such runs.
	byEnc map[string]*secret
	// plain holds the other encodings (passwords): found by substring.
	plain map[string]*secret
	// lens counts the encodings in byEnc by length.
	lens map[int]int
}

// leaks is the run's scanner; TestMain scans with it.
var leaks = newLeakScanner()

func newLeakScanner() *leakScanner {
	return &leakScanner{byEnc: make(map[string]*secret), plain: make(map[string]*secret), lens: make(map[int]int)}
}

const (
	minRun     = 16
	maxSecrets = 1 << 20 // encodings; far above what the suite creates
)

var (
	runRe      = regexp.MustCompile(`[A-Za-z0-9+/_=-]{16,}`)
	nhsRe      = regexp.MustCompile(`(?:^|[^0-9])(999[ -]?[0-9]{3}[ -]?[0-9]{4})(?:[^0-9]|$)`)
	apiTokenRe = regexp.MustCompile(`spt_[A-Za-z0-9_-]{4,}`)
)

func (s *leakScanner) add(sec *secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range sec.encs {
		if len(s.byEnc)+len(s.plain) >= maxSecrets {
			panic("leak scanner: too many secrets registered")
		}
		if len(e) >= minRun && runRe.FindString(e) == e {
			if _, dup := s.byEnc[e]; !dup {
				s.lens[len(e)]++
			}
			s.byEnc[e] = sec
		} else if len(e) >= 6 {
			s.plain[e] = sec
		}
	}
}

// noteKey registers binary key material in hex (both cases) and base64
// (standard and URL alphabets, padded and raw).
func (s *leakScanner) noteKey(kind string, b []byte, origin string) {
	if len(b) < 8 {
		return
	}
	h := hex.EncodeToString(b)
	encs := []string{h, strings.ToUpper(h),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
	slices.Sort(encs)
	s.add(&secret{kind: kind, origin: origin, encs: slices.Compact(encs)})
}

// noteNodeKey registers an Ed25519 private key and its seed.
func (s *leakScanner) noteNodeKey(k ed25519.PrivateKey) {
	if len(k) != ed25519.PrivateKeySize {
		return
	}
	s.noteKey(kindNodeKey, k, "")
	s.noteKey(kindNodeKey, k.Seed(), "")
}

// noteAuditKey registers the subject-ref key beside an audit log, if any.
func (s *leakScanner) noteAuditKey(logPath string) {
	if b, err := os.ReadFile(logPath + ".key"); err == nil {
		s.noteKey(kindAudit, b, "")
	}
}

// noteString registers a textual secret (API token, cookie, CSRF token,
// password) as is and base64-encoded.
func (s *leakScanner) noteString(kind, v string) {
	if len(v) < 6 {
		return
	}
	s.add(&secret{kind: kind, encs: []string{v,
		base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))}})
}

// hit is one secret found in a text.
type hit struct {
	kind       string
	sec        *secret // nil for pattern hits (NHS numbers, API tokens)
	start, end int
}

// hits returns every secret in text.
func (s *leakScanner) hits(text string) []hit {
	var out []hit
	for _, m := range nhsRe.FindAllStringSubmatchIndex(text, -1) {
		out = append(out, hit{kind: kindNHS, start: m[2], end: m[3]})
	}
	for _, m := range apiTokenRe.FindAllStringIndex(text, -1) {
		out = append(out, hit{kind: kindAPIToken, start: m[0], end: m[1]})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range runRe.FindAllStringIndex(text, -1) {
		run := text[m[0]:m[1]]
		for l := range s.lens {
			for i := 0; i+l <= len(run); i++ {
				if sec, ok := s.byEnc[run[i:i+l]]; ok {
					out = append(out, hit{kind: sec.kind, sec: sec, start: m[0] + i, end: m[0] + i + l})
				}
			}
		}
	}
	for e, sec := range s.plain {
		for off := 0; ; {
			i := strings.Index(text[off:], e)
			if i < 0 {
				break
			}
			out = append(out, hit{kind: sec.kind, sec: sec, start: off + i, end: off + i + len(e)})
			off += i + len(e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].start != out[j].start {
			return out[i].start < out[j].start
		}
		return out[i].end > out[j].end
	})
	return out
}

// excused reports whether h may appear in the answer to ex: a lookup key
// to the caller who sent its NHS number or the key itself, a session's
// cookie and CSRF token in the sign-in answer. Nothing else, ever.
func excused(h hit, ex exchange) bool {
	switch h.kind {
	case kindLookup:
		sent := strings.NewReplacer(" ", "", "-", "").Replace(ex.request)
		if h.sec.origin != "" && strings.Contains(sent, h.sec.origin) {
			return true
		}
		for _, e := range h.sec.encs {
			if strings.Contains(ex.request, e) {
				return true
			}
		}
	case kindSession, kindCSRF:
		return ex.path == "/v1/session"
	}
	return false
}

// scan returns one finding per leak, each naming what leaked and where,
// with the leaked values themselves masked.
func (s *leakScanner) scan(logs string, exs []exchange) []string {
	var out []string
	seen := map[string]bool{}
	report := func(f string) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, h := range s.hits(logs) {
		report(fmt.Sprintf("a log line contains %s: %s", article(h.kind), s.mask(lineAround(logs, h.start))))
	}
	for _, ex := range exs {
		for _, h := range s.hits(ex.response) {
			if !excused(h, ex) {
				report(fmt.Sprintf("the answer to %s %s contains %s: %s", ex.method, ex.path, article(h.kind), s.mask(around(ex.response, h.start, h.end))))
			}
		}
	}
	return out
}

func article(kind string) string {
	if kind == kindNHS || strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// lineAround returns the line of text around offset i.
func lineAround(text string, i int) string {
	start := strings.LastIndexByte(text[:i], '\n') + 1
	end := strings.IndexByte(text[i:], '\n')
	if end < 0 {
		end = len(text)
	} else {
		end += i
	}
	return around(text[start:end], i-start, i-start)
}

// around returns up to 100 bytes of text around [start, end).
func around(text string, start, end int) string {
	lo, hi := max(0, start-100), min(len(text), end+100)
	return text[lo:hi]
}

// mask hides every registered secret and every value that could be one
// (long base64 or hex runs, digit groups) so that a finding never repeats
// what leaked.
func (s *leakScanner) mask(text string) string {
	var b strings.Builder
	last := 0
	for _, h := range s.hits(text) {
		if h.start < last {
			continue
		}
		b.WriteString(text[last:h.start])
		b.WriteString("[…]")
		last = h.end
	}
	b.WriteString(text[last:])
	return digitsRe.ReplaceAllString(runRe.ReplaceAllString(b.String(), "[…]"), "[…]")
}

var digitsRe = regexp.MustCompile(`[0-9][0-9 -]{6,}[0-9]`)

// exchange is one HTTP answer a test received, with what was sent.
type exchange struct {
	method, path string
	request      string // query and body
	response     string // status, headers and body
}

type exchangeLog struct {
	mu  sync.Mutex
	exs []exchange
}

func (l *exchangeLog) add(ex exchange) {
	l.mu.Lock()
	l.exs = append(l.exs, ex)
	l.mu.Unlock()
}

func (l *exchangeLog) all() []exchange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.exs)
}

// recorded holds every answer the tests received.
var recorded = &exchangeLog{}

// maxRecorded bounds a recorded body.
const maxRecorded = 8 << 20

// recordingTransport records every answer that passes through it (TestMain
// installs it as http.DefaultTransport, which every client without its own
// transport uses). Bodies are read whole, so a test sees the same bytes.
type recordingTransport struct{ base http.RoundTripper }

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sent := req.URL.RawQuery
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			raw, _ := io.ReadAll(io.LimitReader(b, maxRecorded))
			b.Close()
			sent += "\n" + string(raw)
		}
	}
	res, err := rt.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	var got strings.Builder
	fmt.Fprintf(&got, "%s\n", res.Status)
	res.Header.Write(&got)
	if textual(res.Header) {
		body, rerr := io.ReadAll(io.LimitReader(res.Body, maxRecorded))
		res.Body.Close()
		var rest io.Reader = bytes.NewReader(body)
		if rerr != nil {
			rest = io.MultiReader(rest, errReader{rerr})
		}
		res.Body = io.NopCloser(rest)
		got.Write(body)
	}
	recorded.add(exchange{method: req.Method, path: req.URL.Path, request: sent, response: got.String()})
	return res, nil
}

// textual reports whether an answer's body is text worth scanning (not
// the wasm module, images or a compressed stream).
func textual(h http.Header) bool {
	if h.Get("Content-Encoding") != "" {
		return false
	}
	ct := h.Get("Content-Type")
	return ct == "" || strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "javascript")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestLeakScannerFindsPlantedSecrets plants registered secrets, in every
// encoding, in log lines and answers and checks that each is reported —
// and that the findings never repeat the secret.
func TestLeakScannerFindsPlantedSecrets(t *testing.T) {
	s := newLeakScanner()
	seal := bytes.Repeat([]byte{0xa7, 0x3f, 0xfe}, 11)[:32]
	lookup := bytes.Repeat([]byte{0x5c, 0xe1}, 8)
	s.noteKey(kindSeal, seal, "9990000018")
	s.noteKey(kindLookup, lookup, "9990000018")
	s.noteString(kindCSRF, "csrf-Qx7vR2mK9pL4wT8zN1bY")
	s.noteString(kindPassword, "correct horse battery")
	lookupURL := base64.RawURLEncoding.EncodeToString(lookup)
	type scanCase struct {
		name string
		logs string
		exs  []exchange
		want []string // substrings of the findings, one finding each
	}
	var tests []scanCase
	for i, enc := range []string{hex.EncodeToString(seal), strings.ToUpper(hex.EncodeToString(seal)),
		base64.StdEncoding.EncodeToString(seal), base64.RawStdEncoding.EncodeToString(seal),
		base64.URLEncoding.EncodeToString(seal), base64.RawURLEncoding.EncodeToString(seal)} {
		tests = append(tests,
			scanCase{fmt.Sprint("seal key in a log, encoding ", i), `level=ERROR msg="publish failed" err="bad key ` + enc + `"`, nil,
				[]string{"a log line contains a seal key"}},
			scanCase{fmt.Sprint("seal key in an answer, encoding ", i), "", []exchange{{method: "POST", path: "/v1/lookup", response: `{"x":"` + enc + `"}`}},
				[]string{"the answer to POST /v1/lookup contains a seal key"}})
	}
	tests = append(tests, []scanCase{
		{"clean", "time=2026-11-25T09:00:00Z level=INFO msg=ready took=1.999123s id=k1\n",
			[]exchange{{method: "GET", path: "/healthz", response: `{"status":"ok"}`}}, nil},
		{"number plain", `msg=x n=9990000018`, nil, []string{"a log line contains an NHS number"}},
		{"number spaced", `msg="x 999 000 0018 y"`, nil, []string{"a log line contains an NHS number"}},
		{"number hyphenated", `msg=x n=999-000-0018`, nil, []string{"a log line contains an NHS number"}},
		{"api token", `msg="bad token" tok=spt_abcdEFGH1234`, nil, []string{"a log line contains an API token"}},
		{"password", `msg="login" pw="correct horse battery"`, nil, []string{"a log line contains a password"}},
		{"csrf in a log", `msg=x c=csrf-Qx7vR2mK9pL4wT8zN1bY`, nil, []string{"a log line contains a CSRF token"}},
		{"lookup key in a log", `msg=watch key=` + lookupURL, nil, []string{"a log line contains a lookup key"}},
		{"lookup key to the caller who sent the number", "", []exchange{{method: "POST", path: "/v1/locate",
			request: `{"nhsNumber":"999 000 0018"}`, response: `{"lookupKey":"` + lookupURL + `"}`}}, nil},
		{"lookup key to the caller who sent the key", "", []exchange{{method: "POST", path: "/v1/lookup",
			request: `{"lookupKey":"` + lookupURL + `"}`, response: `{"k":"` + hex.EncodeToString(lookup) + `"}`}}, nil},
		{"lookup key to anyone else", "", []exchange{{method: "POST", path: "/v1/contact-requests",
			request: `{"nodeId":"b"}`, response: `{"lookupKey":"` + lookupURL + `"}`}}, []string{"the answer to POST /v1/contact-requests contains a lookup key"}},
		{"seal key even to the caller who sent the number", "", []exchange{{method: "POST", path: "/v1/locate",
			request: `{"nhsNumber":"9990000018"}`, response: `{"s":"` + base64.StdEncoding.EncodeToString(seal) + `"}`}}, []string{"the answer to POST /v1/locate contains a seal key"}},
		{"number even to the caller who sent it", "", []exchange{{method: "POST", path: "/v1/locate",
			request: `{"nhsNumber":"9990000018"}`, response: `{"error":{"message":"9990000018 is wrong"}}`}}, []string{"the answer to POST /v1/locate contains an NHS number"}},
		{"csrf in the sign-in answer", "", []exchange{{method: "POST", path: "/v1/session",
			response: `{"csrfToken":"csrf-Qx7vR2mK9pL4wT8zN1bY"}`}}, nil},
		{"csrf anywhere else", "", []exchange{{method: "GET", path: "/v1/contact-requests",
			response: `{"csrfToken":"csrf-Qx7vR2mK9pL4wT8zN1bY"}`}}, []string{"the answer to GET /v1/contact-requests contains a CSRF token"}},
		{"api token in an answer", "", []exchange{{method: "POST", path: "/v1/records",
			response: "400 Bad Request\nX-Debug: spt_abcdEFGH1234\n"}}, []string{"the answer to POST /v1/records contains an API token"}},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.scan(tc.logs, tc.exs)
			if len(got) != len(tc.want) {
				t.Fatalf("findings %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("finding %q, want %q", got[i], w)
				}
				for _, secretText := range []string{"9990000018", "999 000 0018", hex.EncodeToString(seal), lookupURL, "spt_abcdEFGH1234", "csrf-Qx7vR2mK9pL4wT8zN1bY", "correct horse"} {
					if strings.Contains(got[i], secretText) {
						t.Errorf("finding repeats the secret: %q", got[i])
					}
				}
			}
		})
	}
}

// TestLeakScannerFailsTheRun runs this test binary again with a seal key
// planted in a log line and an answer: TestMain's scanner must fail that
// run, name what leaked, and not print it.
func TestLeakScannerFailsTheRun(t *testing.T) {
	if os.Getenv(plantEnv) != "" {
		t.Skip("already the planted run")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), plantEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("the planted run did not fail: %v\n%s", err, out)
	}
	for _, want := range []string{"leak scanner: a log line contains a seal key", "leak scanner: the answer to POST /v1/lookup contains a seal key"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if regexp.MustCompile(`[0-9a-f]{64}|[A-Za-z0-9+/]{43}=`).Match(out) {
		t.Errorf("the scanner printed the key:\n%s", out)
	}
}

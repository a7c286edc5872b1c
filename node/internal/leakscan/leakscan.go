// Package leakscan is the node's leak scanner for tests: it holds every
// secret a test run created (NHS numbers by pattern, API tokens, OPRF
// tokens, lookup and seal keys, node, holder, gossip, issuer and audit
// keys, session cookies, CSRF tokens, passwords) and finds any of them, in
// any encoding, in the run's log lines and HTTP answers. [Main] wires a test
// binary: its TestMain calls it, and the run fails on any leak. It is
// imported by tests only.
package leakscan

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/signpost-federation/signpost/node/internal/secrethook"
	"github.com/signpost-federation/signpost/wasm"
)

// The run's scanner, its log sink and its recorded answers: one of each
// per test binary.
var (
	Leaks    = New()
	Logs     = &Sink{}
	Recorded = &ExchangeLog{}
)

// PlantEnv makes Main plant a leak (the scanner's self-test): a run with
// it set must fail.
const PlantEnv = "SIGNPOST_LEAKSCAN_PLANT"

// Main runs the tests, then the leak scanner over everything the run
// produced: every log line (the test nodes' loggers, slog's default and
// the log package all write to Logs) and every HTTP answer a test received
// (http.DefaultTransport records them, and tests add node-to-node answers
// to Recorded). No log line may contain an NHS number, an API token or any
// secret the tests created; no answer may either, except a lookup key in
// the answer to the caller who sent its number or the key itself, and a
// session's own cookie and CSRF token in the sign-in answer. It returns the
// exit code for os.Exit.
//
// With PlantEnv set, a seal key is planted in a log line and an answer
// before the tests run, so that the run must fail.
func Main(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		// A benchmark creates secrets by the hundred thousand (a 10^5-row
		// import); the scanner is for the test suite's traffic.
		fmt.Fprintln(os.Stderr, "leak scanner: off while benchmarks run")
		return m.Run()
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(Logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	http.DefaultTransport = &RecordingTransport{Base: http.DefaultTransport, Log: Recorded}
	secrethook.Tokens = func(numbers []string, toks []wasm.Token) {
		for i, tk := range toks {
			Leaks.NoteKey(KindToken, tk.Token, numbers[i])
			Leaks.NoteKey(KindLookup, tk.LookupKey[:], numbers[i])
			Leaks.NoteKey(KindSeal, tk.SealKey[:], numbers[i])
		}
	}
	secrethook.Share = func(v []byte) { Leaks.NoteKey(KindIssuer, v, "") }
	secrethook.Stack = func(s secrethook.Secrets) {
		Leaks.NoteKey(KindHolder, s.Holder[:], "")
		Leaks.NoteNodeKey(s.NodeKey)
		for _, k := range s.GossipKeys {
			Leaks.NoteKey(KindGossip, k, "")
		}
		Leaks.NoteAuditKey(s.AuditLogPath)
	}
	if os.Getenv(PlantEnv) != "" {
		plant()
	}
	code := m.Run()
	if code == 0 {
		if fs := Leaks.Scan(Logs.String(), Recorded.All()); len(fs) > 0 {
			for _, f := range fs {
				fmt.Fprintln(os.Stderr, "leak scanner:", f)
			}
			code = 1
		}
	}
	return code
}

// plant logs a seal key the way a careless handler would, and records an
// answer that carries one, through the same paths real tests use.
func plant() {
	var seal [32]byte
	rand.Read(seal[:])
	Leaks.NoteKey(KindSeal, seal[:], "9990000018")
	slog.Error("publish failed", "seal", hex.EncodeToString(seal[:]))
	Recorded.Add(Exchange{Method: "POST", Path: "/v1/lookup", Response: `{"entries":[],"k":"` + base64.StdEncoding.EncodeToString(seal[:]) + `"}`})
}

// Sink collects every log line of a test run for the scanner. Safe for
// concurrent use.
type Sink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Sink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *Sink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Kinds of secret the scanner knows.
const (
	KindNHS      = "NHS number"
	KindAPIToken = "API token"
	KindToken    = "OPRF token"
	KindLookup   = "lookup key"
	KindSeal     = "seal key"
	KindIssuer   = "issuer key"
	KindNodeKey  = "node key"
	KindHolder   = "holder secret"
	KindGossip   = "gossip key"
	KindAudit    = "audit key"
	KindSession  = "session cookie"
	KindCSRF     = "CSRF token"
	KindPassword = "password"
	KindObjKey   = "objection key"
	KindMarker   = "objection marker"
)

// secret is one registered value and every encoding it could leak in.
type secret struct {
	kind string
	// origin is the canonical NHS number the secret derives from ("" if
	// none): the caller who sent that number may see its lookup key.
	origin string
	encs   []string
}

// Scanner holds the registered secrets. Safe for concurrent use.
type Scanner struct {
	mu sync.Mutex
	// byEnc holds encodings made only of base64/hex characters and at
	// least minRun long: they are found by sliding over such runs.
	byEnc map[string]*secret
	// plain holds the other encodings (passwords): found by substring.
	plain map[string]*secret
	// lens counts the encodings in byEnc by length.
	lens map[int]int
}

func New() *Scanner {
	return &Scanner{byEnc: make(map[string]*secret), plain: make(map[string]*secret), lens: make(map[int]int)}
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

func (s *Scanner) add(sec *secret) {
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

// NoteKey registers binary key material in hex (both cases) and base64
// (standard and URL alphabets, padded and raw).
func (s *Scanner) NoteKey(kind string, b []byte, origin string) {
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

// NoteNodeKey registers an Ed25519 private key and its seed.
func (s *Scanner) NoteNodeKey(k ed25519.PrivateKey) {
	if len(k) != ed25519.PrivateKeySize {
		return
	}
	s.NoteKey(KindNodeKey, k, "")
	s.NoteKey(KindNodeKey, k.Seed(), "")
}

// NoteAuditKey registers the subject-ref key beside an audit log, if any.
func (s *Scanner) NoteAuditKey(logPath string) {
	if b, err := os.ReadFile(logPath + ".key"); err == nil {
		s.NoteKey(KindAudit, b, "")
	}
}

// NoteString registers a textual secret (API token, cookie, CSRF token,
// password) as is and base64-encoded.
func (s *Scanner) NoteString(kind, v string) {
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
func (s *Scanner) hits(text string) []hit {
	var out []hit
	for _, m := range nhsRe.FindAllStringSubmatchIndex(text, -1) {
		out = append(out, hit{kind: KindNHS, start: m[2], end: m[3]})
	}
	for _, m := range apiTokenRe.FindAllStringIndex(text, -1) {
		out = append(out, hit{kind: KindAPIToken, start: m[0], end: m[1]})
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
func excused(h hit, ex Exchange) bool {
	switch h.kind {
	case KindLookup:
		sent := strings.NewReplacer(" ", "", "-", "").Replace(ex.Request)
		if h.sec.origin != "" && strings.Contains(sent, h.sec.origin) {
			return true
		}
		for _, e := range h.sec.encs {
			if strings.Contains(ex.Request, e) {
				return true
			}
		}
	case KindSession, KindCSRF:
		return ex.Path == "/v1/session"
	}
	return false
}

// Scan returns one finding per leak, each naming what leaked and where,
// with the leaked values themselves masked.
func (s *Scanner) Scan(logs string, exs []Exchange) []string {
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
		for _, h := range s.hits(ex.Response) {
			if !excused(h, ex) {
				report(fmt.Sprintf("the answer to %s %s contains %s: %s", ex.Method, ex.Path, article(h.kind), s.mask(around(ex.Response, h.start, h.end))))
			}
		}
	}
	return out
}

func article(kind string) string {
	if kind == KindNHS || strings.ContainsRune("AEIOU", rune(kind[0])) {
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
func (s *Scanner) mask(text string) string {
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

// Exchange is one HTTP answer a test received, with what was sent.
type Exchange struct {
	Method, Path string
	Request      string // query and body
	Response     string // status, headers and body
}

type ExchangeLog struct {
	mu  sync.Mutex
	exs []Exchange
}

func (l *ExchangeLog) Add(ex Exchange) {
	l.mu.Lock()
	l.exs = append(l.exs, ex)
	l.mu.Unlock()
}

func (l *ExchangeLog) All() []Exchange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.exs)
}

// maxRecorded bounds a recorded body.
const maxRecorded = 8 << 20

// RecordingTransport records every answer that passes through it (TestMain
// installs it as http.DefaultTransport, which every client without its own
// transport uses). Bodies are read whole, so a test sees the same bytes.
type RecordingTransport struct {
	Base http.RoundTripper
	Log  *ExchangeLog
}

func (rt *RecordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sent := req.URL.RawQuery
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			raw, _ := io.ReadAll(io.LimitReader(b, maxRecorded))
			b.Close()
			sent += "\n" + string(raw)
		}
	}
	res, err := rt.Base.RoundTrip(req)
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
	rt.Log.Add(Exchange{Method: req.Method, Path: req.URL.Path, Request: sent, Response: got.String()})
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

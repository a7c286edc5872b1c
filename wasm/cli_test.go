package wasm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/signpost-federation/signpost/wasm/internal/ident"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// runIdent runs `signpost ident` with the compilation cache off (compiled
// once per test process, in memory; cache_test.go tests the cache).
func runIdent(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv(CacheEnv, CacheOff)
	var out, errb bytes.Buffer
	code = IdentMain(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestIdentValidate(t *testing.T) {
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string
	}{
		{"args all valid", "", []string{"validate", "999 000 0018", "9990000026"}, 0, "valid\t999 000 0018\nvalid\t999 000 0026\n"},
		{"args one invalid", "", []string{"validate", "9990000018", "9990000019"}, 1, "valid\t999 000 0018\ninvalid\tnhs.check_digit\tthe check digit does not match: this is not a valid number; check it against the record\n"},
		{"stdin with CRLF", "9990000018\r\n999000001\n", []string{"validate"}, 1, "valid\t999 000 0018\ninvalid\tnhs.length\t10 digits expected, got 9 (a leading zero may have been lost)\n"},
		{"scheme upn", "", []string{"validate", "--scheme", "upn", "c999000000001"}, 0, "valid\tC999000000001\n"},
		{"unknown scheme", "", []string{"validate", "--scheme", "passport", "1"}, 2, ""},
		{"bad flag", "", []string{"validate", "--nope"}, 2, ""},
		{"no subcommand", "", nil, 2, ""},
		{"unknown subcommand", "", []string{"check"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := runIdent(t, tt.stdin, tt.args...)
			if code != tt.code || out != tt.stdout {
				t.Errorf("exit %d, stdout %q; want %d, %q", code, out, tt.code, tt.stdout)
			}
		})
	}
}

func TestIdentValidateJSONManyLines(t *testing.T) {
	nums := GenerateTestNumbers(42, 10_000)
	in := strings.Join(nums, "\n") + "\n0000000000\n"
	code, out, errs := runIdent(t, in, "validate", "--json")
	if code != 1 {
		t.Fatalf("exit %d (%s), want 1 for the placeholder", code, errs)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		var r struct {
			Input, Scheme, Normalized, Code, Reason string
			Valid                                   bool
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if n < len(nums) && (!r.Valid || r.Input != nums[n] || r.Normalized != nums[n] || r.Scheme != "nhs") {
			t.Fatalf("line %d: %+v", n, r)
		}
		if n == len(nums) && (r.Valid || r.Code != "nhs.placeholder" || r.Reason == "") {
			t.Fatalf("placeholder line: %+v", r)
		}
		n++
	}
	if n != len(nums)+1 {
		t.Fatalf("%d output lines for %d inputs", n, len(nums)+1)
	}
}

func TestIdentGenerate(t *testing.T) {
	code, a, _ := runIdent(t, "", "generate", "--count", "50", "--seed", "7")
	_, b, _ := runIdent(t, "", "generate", "--count", "50", "--seed", "7")
	_, c, _ := runIdent(t, "", "generate", "--count", "50", "--seed", "8")
	if code != 0 || a != b || a == c {
		t.Fatalf("generate not reproducible by seed (exit %d)", code)
	}
	lines := strings.Fields(a)
	if len(lines) != 50 {
		t.Fatalf("%d numbers", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "999") {
			t.Fatalf("%s outside the test range", l)
		}
	}
	// Every generated number passes validation through the module.
	if code, _, _ := runIdent(t, a, "validate"); code != 0 {
		t.Fatal("generated numbers do not validate")
	}
	for _, args := range [][]string{{"generate"}, {"generate", "--count", "0"}, {"generate", "--count", "5", "--seed", "x"}} {
		if code, _, _ := runIdent(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestGenerateTestNumbersDistinct(t *testing.T) {
	nums := GenerateTestNumbers(9, 200_000)
	seen := make(map[string]bool, len(nums))
	for _, n := range nums {
		if seen[n] {
			t.Fatalf("%s repeated within the first 200,000", n)
		}
		seen[n] = true
		if r := (ident.NHS{}).Validate(n); !r.Valid || r.Range != ident.RangeTest {
			t.Fatalf("%s: %+v", n, r)
		}
	}
}

// oddLines returns n input lines for the validation pipeline, reproducible
// from seed: valid test-range numbers, spaced and mistyped ones, empty
// lines, other schemes' shapes, control characters, invalid UTF-8, HTML
// and JSON metacharacters, U+2028, and CRLF endings.
func oddLines(seed uint64, n int) []string {
	nums := GenerateTestNumbers(seed, n)
	odd := []string{"", " ", "999 000 0018", "999-000-0018", "9990000019", "999000001", "99900000180",
		"<9990000018>", "\"999\\0000018\"", "999\x00000018", "\t9990000018", "999\u2028000\u20290018",
		"\xff\xfe9990000018", "ＡＢＣ", "9990000000", "9999999999", "C999000000001", "999 000 0018\r"}
	out := make([]string, n)
	for i := range out {
		if i%3 == 0 {
			out[i] = odd[(i/3)%len(odd)]
		} else {
			out[i] = nums[i]
		}
	}
	return out
}

// referenceOutput is `ident validate`'s output as it was before the
// pipeline: ValidateBatch, then fmt for plain lines or an encoding/json
// Encoder (no HTML escaping) for --json.
func referenceOutput(t *testing.T, lines []string, asJSON bool) string {
	t.Helper()
	r := newTestRuntime(t, Config{Instances: 1})
	inputs := make([]string, len(lines))
	for i, l := range lines {
		inputs[i] = strings.TrimSuffix(l, "\r")
	}
	res, err := r.ValidateBatch(context.Background(), "nhs", inputs)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, r := range res {
		switch {
		case asJSON:
			if err := enc.Encode(r); err != nil {
				t.Fatal(err)
			}
		case r.Valid:
			fmt.Fprintf(&b, "valid\t%s\n", r.Formatted)
		default:
			fmt.Fprintf(&b, "invalid\t%s\t%s\n", r.Code, r.Reason)
		}
	}
	return b.String()
}

// TestIdentValidateStreamMatchesReference: many jobs' worth of odd lines
// through stdin give, byte for byte and in order, the output of the
// straightforward implementation, in plain and JSON form.
func TestIdentValidateStreamMatchesReference(t *testing.T) {
	seed := testutil.Seed(t)
	lines := oddLines(seed, 3*cliBatch+17)
	stdin := strings.Join(lines, "\n") + "\n"
	for _, asJSON := range []bool{false, true} {
		args := []string{"validate"}
		if asJSON {
			args = append(args, "--json")
		}
		code, out, errs := runIdent(t, stdin, args...)
		if code != 1 || errs != "" {
			t.Fatalf("json %v: exit %d, stderr %q; want 1 (some lines are invalid), nothing", asJSON, code, errs)
		}
		if want := referenceOutput(t, lines, asJSON); out != want {
			ol, wl := strings.SplitAfter(out, "\n"), strings.SplitAfter(want, "\n")
			for i := range min(len(ol), len(wl)) {
				if ol[i] != wl[i] {
					t.Fatalf("json %v: line %d is %q, want %q", asJSON, i+1, ol[i], wl[i])
				}
			}
			t.Fatalf("json %v: %d output lines, want %d", asJSON, len(ol), len(wl))
		}
	}
	// All valid, across several jobs and without a final newline: exit 0.
	nums := GenerateTestNumbers(seed, 2*cliBatch+1)
	code, out, _ := runIdent(t, strings.Join(nums, "\n"), "validate")
	if code != 0 || strings.Count(out, "valid\t999 ") != len(nums) {
		t.Fatalf("exit %d, %d valid lines; want 0, %d", code, strings.Count(out, "valid\t999 "), len(nums))
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// cancellingReader cancels a context once it has been read past `after`
// bytes, then goes on giving its data.
type cancellingReader struct {
	r      io.Reader
	after  int
	read   int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.read += n; c.read > c.after {
		c.cancel()
	}
	return n, err
}

// TestIdentValidateStreamFailures: a read error, a write error and a
// cancellation each end the run with exit 1 and the reason on stderr, and
// every goroutine of the pipeline ends (TestMain checks).
func TestIdentValidateStreamFailures(t *testing.T) {
	t.Setenv(CacheEnv, CacheOff)
	many := strings.Join(GenerateTestNumbers(1, 8*cliBatch), "\n") + "\n"
	tooLong := many + strings.Repeat("9", 1<<20+1) + "\n" + many
	tests := []struct {
		name   string
		stdin  func(cancel context.CancelFunc) io.Reader
		stdout io.Writer
		want   string
	}{
		{"line too long", func(context.CancelFunc) io.Reader { return strings.NewReader(tooLong) }, io.Discard, "token too long"},
		{"write fails", func(context.CancelFunc) io.Reader { return strings.NewReader(many) }, failingWriter{}, "disk full"},
		{"cancelled", func(cancel context.CancelFunc) io.Reader {
			return &cancellingReader{r: strings.NewReader(many + many + many), after: len(many), cancel: cancel}
		}, io.Discard, context.Canceled.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var errb bytes.Buffer
			code := IdentMain(ctx, []string{"validate"}, tt.stdin(cancel), tt.stdout, &errb)
			if code != 1 || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errb.String(), tt.want)
			}
		})
	}
}

// TestAppendJSONResultMatchesEncodingJSON: the hand-written JSON line is
// byte for byte encoding/json's (SetEscapeHTML(false)) for odd values.
func TestAppendJSONResultMatchesEncodingJSON(t *testing.T) {
	odd := []string{"", "9990000018", "a\"b\\c", "<&>", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "\xff", "a\xc3", "é€😀",
		"\u2028\u2029", "\ufffd", "\xed\xa0\x80", "line\nbreak", "%s%d"}
	for i, s := range odd {
		for _, valid := range []bool{false, true} {
			r := Result{Input: s, Valid: valid, Scheme: "nhs", System: odd[(i+1)%len(odd)], Normalized: odd[(i+2)%len(odd)],
				Formatted: odd[(i+3)%len(odd)], Code: odd[(i+4)%len(odd)], Reason: odd[(i+5)%len(odd)], Range: odd[(i+6)%len(odd)]}
			checkJSONResult(t, r)
		}
	}
}

func checkJSONResult(t *testing.T, r Result) {
	t.Helper()
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	if got := appendJSONResult(nil, &r); string(got) != want.String() {
		t.Fatalf("%#v:\n got %s\nwant %s", r, got, want.Bytes())
	}
}

func FuzzAppendJSONResult(f *testing.F) {
	f.Add("9990000018", true, "999 000 0018", "", "")
	f.Add("999\x00000018\xff", false, "", "nhs.check_digit", "a \"reason\" <with> \\ \u2028")
	f.Fuzz(func(t *testing.T, input string, valid bool, formatted, code, reason string) {
		checkJSONResult(t, Result{Input: input, Valid: valid, Scheme: "nhs", System: code + reason,
			Normalized: input, Formatted: formatted, Code: code, Reason: reason, Range: formatted})
	})
}

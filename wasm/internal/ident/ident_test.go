package ident

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/signpost-federation/signpost/wasm/internal/naive"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// vector is one line of testdata/vectors.txt.
type vector struct {
	line       int
	scheme     string
	input      string
	want       string // "ok" or a code
	normalized string
	formatted  string
	rng        string
}

func readVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) != 3 {
			t.Fatalf("vectors.txt:%d: want 3 tab-separated fields", n)
		}
		in, err := strconv.Unquote(parts[1])
		if err != nil {
			t.Fatalf("vectors.txt:%d: input: %v", n, err)
		}
		v := vector{line: n, scheme: parts[0], input: in}
		exp := parts[2]
		if rest, ok := strings.CutPrefix(exp, "ok "); ok {
			v.want = "ok"
			norm, rest, _ := strings.Cut(rest, " ")
			v.normalized = norm
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("vectors.txt:%d: formatted: %v", n, err)
			}
			v.formatted, _ = strconv.Unquote(q)
			v.rng = strings.TrimSpace(rest[len(q):])
		} else {
			v.want = exp
		}
		vs = append(vs, v)
	}
	return vs
}

// TestKnownVectors checks every line of testdata/vectors.txt (the wasm
// package's tests run the same file through the module).
func TestKnownVectors(t *testing.T) {
	for _, v := range readVectors(t) {
		t.Run(strconv.Itoa(v.line)+"_"+v.scheme, func(t *testing.T) {
			s, ok := Lookup(v.scheme)
			if !ok {
				t.Fatalf("unknown scheme %q", v.scheme)
			}
			r := s.Validate(v.input)
			if r.Input != v.input || r.Scheme != v.scheme || r.System != s.System() {
				t.Errorf("identity fields: %+v", r)
			}
			if v.want == "ok" {
				if !r.Valid || r.Normalized != v.normalized || r.Formatted != v.formatted || r.Range != v.rng || r.Code != "" {
					t.Errorf("got %+v, want valid %s %q %s", r, v.normalized, v.formatted, v.rng)
				}
				return
			}
			if r.Valid || string(r.Code) != v.want || r.Reason == "" || r.Normalized != "" {
				t.Errorf("got %+v, want code %s", r, v.want)
			}
			if strings.Contains(r.Reason, v.input) && len(v.input) > 1 {
				t.Errorf("reason %q contains the input", r.Reason)
			}
		})
	}
}

func TestReasonsAreSpecific(t *testing.T) {
	tests := []struct {
		name, input, reason string
	}{
		{"nine digits", "999000001", "10 digits expected, got 9 (a leading zero may have been lost)"},
		{"eleven digits", "99900000188", "10 digits expected, got 11"},
		{"wrong check digit", "9990000019", "the check digit does not match: this is not a valid number; check it against the record"},
		{"check digit ten", "9991234560", "no valid number starts with these digits; check it against the record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (NHS{}).Validate(tt.input).Reason; got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestEveryCodeIsCovered(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range readVectors(t) {
		seen[v.want] = true
	}
	// Codes produced by the shared digit parser are covered by their NHS
	// vectors; every other code needs a vector of its own.
	shared := map[Code]bool{
		CHIEmpty: true, CHIInvalidChar: true, HCEmpty: true, HCInvalidChar: true, HCNonASCIIDigit: true,
		HCLength: true, HCNoCheckDigit: true, ULNEmpty: true, ULNInvalidChar: true, ULNNonASCIIDigit: true,
	}
	for _, c := range AllCodes {
		if !seen[string(c)] && !shared[c] {
			t.Errorf("no vector for code %s", c)
		}
	}
}

func TestNHSRange(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"999", RangeTest}, {"010", RangeScotland}, {"311", RangeScotland}, {"312", RangeUnallocated},
		{"320", RangeNI}, {"399", RangeNI}, {"400", RangeEnglandWales}, {"499", RangeEnglandWales},
		{"500", RangeUnallocated}, {"600", RangeEnglandWales}, {"799", RangeEnglandWales},
		{"800", RangeUnallocated}, {"998", RangeUnallocated}, {"000", RangeUnallocated},
	}
	for _, tt := range tests {
		if got := NHSRange([]byte(tt.prefix + "0000000")); got != tt.want {
			t.Errorf("NHSRange(%s…) = %s, want %s", tt.prefix, got, tt.want)
		}
	}
}

// TestAgreesWithNaiveReference is an acceptance test: 10^7 random inputs,
// natively. The seed is printed; reproduce with -seed.
func TestAgreesWithNaiveReference(t *testing.T) {
	n := 10_000_000
	if testing.Short() {
		n = 100_000
	}
	seed := testutil.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	buf := make([]rune, 10)
	valid := 0
	for i := range n {
		in := naive.RandomInput(rng, buf)
		want := naive.NHS(in)
		r := (NHS{}).Validate(in)
		if string(r.Code) != want || r.Valid != (want == "") {
			t.Fatalf("input #%d %q: validator %q valid=%v, reference %q (seed %d)", i, in, r.Code, r.Valid, want, seed)
		}
		if r.Valid {
			valid++
		}
	}
	t.Logf("%d inputs, %d valid", n, valid)
}

// TestCheckFailuresNameNoDigit: a check-digit (or check-letter) failure
// says the same sentence whatever the number, so it can never give away the
// digit that would make it valid: a mistyped number "corrected" that way is
// a valid number of a different person.
func TestCheckFailuresNameNoDigit(t *testing.T) {
	seed := testutil.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	reasons := map[Code]map[string]bool{}
	for range 200_000 {
		b := []byte(strconv.FormatUint(9_000_000_000+rng.Uint64N(1_000_000_000), 10))
		for _, s := range schemes {
			in := string(b)
			switch s.Name() {
			case "upn":
				in = string(rune('A'+rng.IntN(26))) + "9999" + in[:8]
			case "chi": // a real date DDMMYY first, so the check digit is reached
				in = fmt.Sprintf("%02d%02d%02d%s", 1+rng.IntN(28), 1+rng.IntN(12), rng.IntN(100), in[6:])
			}
			r := s.Validate(in)
			if r.Valid || !strings.HasSuffix(string(r.Code), "check_digit") && !strings.HasSuffix(string(r.Code), "check_letter") && !strings.HasSuffix(string(r.Code), "no_check_digit") {
				continue
			}
			if reasons[r.Code] == nil {
				reasons[r.Code] = map[string]bool{}
			}
			reasons[r.Code][r.Reason] = true
		}
	}
	for _, code := range []Code{NHSCheckDigit, NHSNoCheckDigit, CHICheckDigit, ULNCheckDigit, UPNCheckLetter} {
		if len(reasons[code]) != 1 {
			t.Errorf("%s: %d different reasons, want one sentence for every number: %v (seed %d)", code, len(reasons[code]), reasons[code], seed)
		}
		for r := range reasons[code] {
			if strings.IndexFunc(r, unicode.IsDigit) >= 0 {
				t.Errorf("%s: reason %q names a digit", code, r)
			}
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"9990000018", "999 000 0018", "٩٩٩٠٠٠٠٠١٨", "0000000000", "C999000000001", "1506940013", "", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, s := range Schemes() {
			r := s.Validate(in)
			if r.Input != in || r.Scheme != s.Name() {
				t.Fatalf("%s: identity fields wrong", s.Name())
			}
			if r.Valid {
				if r.Code != "" || r.Reason != "" || r.Normalized == "" || r.Formatted == "" {
					t.Fatalf("%s: valid result with inconsistent fields: %+v", s.Name(), r)
				}
				// Canonical and display forms are fixed points.
				for _, again := range []string{r.Normalized, r.Formatted} {
					r2 := s.Validate(again)
					if !r2.Valid || r2.Normalized != r.Normalized {
						t.Fatalf("%s: %q re-validates to %+v", s.Name(), again, r2)
					}
				}
			} else {
				if r.Code == "" || r.Reason == "" || r.Normalized != "" || !strings.HasPrefix(string(r.Code), s.Name()+".") {
					t.Fatalf("%s: invalid result with inconsistent fields: %+v", s.Name(), r)
				}
			}
		}
		// The NHS validator agrees with the naive reference on the inputs the
		// reference understands (ASCII separators only, within the size bound).
		if len(in) <= MaxInputLen && !strings.ContainsAny(in, "\t\u00a0\u2009\u202f\u2010\u2011\u2012\u2013\u2014\u2212") {
			if want, got := naive.NHS(in), (NHS{}).Validate(in).Code; string(got) != want {
				t.Fatalf("NHS(%q) = %q, reference %q", in, got, want)
			}
		}
	})
}

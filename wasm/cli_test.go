package wasm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/signpost-federation/signpost/wasm/internal/ident"
)

func runIdent(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
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

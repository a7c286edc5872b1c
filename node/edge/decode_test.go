package edge

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

const testSalt = "00112233445566778899aabbccddeeff"

func TestReadResume(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		done map[int]string
		err  error
	}{
		{"empty: a new file", "", map[int]string{}, nil},
		{"header only", resumeMagic + " " + testSalt + "\n", map[int]string{}, nil},
		{"records", resumeMagic + " " + testSalt + "\n1 abcd\n7 0f0f\n", map[int]string{1: "abcd", 7: "0f0f"}, nil},
		{"a torn last record is ignored", resumeMagic + " " + testSalt + "\n1 abcd\n7 0f", map[int]string{1: "abcd"}, nil},
		{"a torn header", resumeMagic, nil, ErrResumeFile},
		{"another file", "9990000018\n", nil, ErrResumeFile},
		{"short salt", resumeMagic + " 0011\n", nil, ErrResumeFile},
		{"line zero", resumeMagic + " " + testSalt + "\n0 abcd\n", nil, ErrResumeFile},
		{"long tag", resumeMagic + " " + testSalt + "\n1 abcdef\n", nil, ErrResumeFile},
		{"not hex", resumeMagic + " " + testSalt + "\n1 wxyz\n", nil, ErrResumeFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := readResume(strings.NewReader(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && !maps.Equal(r.done, tc.done) {
				t.Errorf("done %v, want %v", r.done, tc.done)
			}
		})
	}
}

// FuzzReadResume: any bytes parse or are refused without panic, and what
// parses, written out again, reads back the same.
func FuzzReadResume(f *testing.F) {
	f.Add([]byte(resumeMagic + " " + testSalt + "\n1 abcd\n7 0f0f\n"))
	f.Add([]byte(resumeMagic + " " + testSalt + "\n1 ab"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := readResume(strings.NewReader(string(in)))
		if err != nil {
			return
		}
		if r.salt == nil {
			if len(r.done) != 0 {
				t.Fatal("records without a header")
			}
			return
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s %x\n", resumeMagic, r.salt)
		for _, n := range slices.Sorted(maps.Keys(r.done)) {
			if n < 1 || len(r.done[n]) != 2*tagLen {
				t.Fatalf("record %d %q accepted", n, r.done[n])
			}
			fmt.Fprintf(&b, "%d %s\n", n, r.done[n])
		}
		again, err := readResume(strings.NewReader(b.String()))
		if err != nil || !maps.Equal(again.done, r.done) || string(again.salt) != string(r.salt) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzDecodeError: any error answer becomes a code and message (the node's
// if its body is the node's JSON error) and a bounded wait.
func FuzzDecodeError(f *testing.F) {
	f.Add(429, "7", []byte(`{"error":{"code":"rate_limited","message":"slow down"}}`))
	f.Add(503, "", []byte(`{"error":{"code":"issuers_unavailable","message":"only 1 of 3"}}`))
	f.Add(502, "99999999999", []byte(`<html>bad gateway</html>`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		ae := decodeError(status, retryAfter, body)
		if ae.Code == "" || ae.RetryAfter < 0 || ae.RetryAfter > maxRetryAfter || ae.Status != status {
			t.Fatalf("decodeError(%d, %q, %q) = %+v", status, retryAfter, body, ae)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7": 7 * time.Second, " 2 ": 2 * time.Second, "": 0, "-1": 0, "1.5": 0,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0, "999999": maxRetryAfter,
	} {
		if got := parseRetryAfter(in); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestOneField(t *testing.T) {
	for in, want := range map[string]string{
		"Harbour Lane GP Practice": "Harbour Lane GP Practice",
		"A\tB\nC\rD":               "A B C D",
		"":                         "",
	} {
		if got := oneField(in); got != want {
			t.Errorf("oneField(%q) = %q, want %q", in, got, want)
		}
	}
}

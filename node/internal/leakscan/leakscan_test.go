package leakscan

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// TestLeakScannerFindsPlantedSecrets plants registered secrets, in every
// encoding, in log lines and answers and checks that each is reported —
// and that the findings never repeat the secret.
func TestLeakScannerFindsPlantedSecrets(t *testing.T) {
	s := New()
	seal := bytes.Repeat([]byte{0xa7, 0x3f, 0xfe}, 11)[:32]
	lookup := bytes.Repeat([]byte{0x5c, 0xe1}, 8)
	s.NoteKey(KindSeal, seal, "9990000018")
	s.NoteKey(KindLookup, lookup, "9990000018")
	s.NoteString(KindCSRF, "csrf-Qx7vR2mK9pL4wT8zN1bY")
	s.NoteString(KindPassword, "correct horse battery")
	lookupURL := base64.RawURLEncoding.EncodeToString(lookup)
	type scanCase struct {
		name string
		logs string
		exs  []Exchange
		want []string // substrings of the findings, one finding each
	}
	var tests []scanCase
	for i, enc := range []string{hex.EncodeToString(seal), strings.ToUpper(hex.EncodeToString(seal)),
		base64.StdEncoding.EncodeToString(seal), base64.RawStdEncoding.EncodeToString(seal),
		base64.URLEncoding.EncodeToString(seal), base64.RawURLEncoding.EncodeToString(seal)} {
		tests = append(tests,
			scanCase{fmt.Sprint("seal key in a log, encoding ", i), `level=ERROR msg="publish failed" err="bad key ` + enc + `"`, nil,
				[]string{"a log line contains a seal key"}},
			scanCase{fmt.Sprint("seal key in an answer, encoding ", i), "", []Exchange{{Method: "POST", Path: "/v1/lookup", Response: `{"x":"` + enc + `"}`}},
				[]string{"the answer to POST /v1/lookup contains a seal key"}})
	}
	tests = append(tests, []scanCase{
		{"clean", "time=2026-11-25T09:00:00Z level=INFO msg=ready took=1.999123s id=k1\n",
			[]Exchange{{Method: "GET", Path: "/healthz", Response: `{"status":"ok"}`}}, nil},
		{"number plain", `msg=x n=9990000018`, nil, []string{"a log line contains an NHS number"}},
		{"number spaced", `msg="x 999 000 0018 y"`, nil, []string{"a log line contains an NHS number"}},
		{"number hyphenated", `msg=x n=999-000-0018`, nil, []string{"a log line contains an NHS number"}},
		{"api token", `msg="bad token" tok=spt_abcdEFGH1234`, nil, []string{"a log line contains an API token"}},
		{"password", `msg="login" pw="correct horse battery"`, nil, []string{"a log line contains a password"}},
		{"csrf in a log", `msg=x c=csrf-Qx7vR2mK9pL4wT8zN1bY`, nil, []string{"a log line contains a CSRF token"}},
		{"lookup key in a log", `msg=watch key=` + lookupURL, nil, []string{"a log line contains a lookup key"}},
		{"lookup key to the caller who sent the number", "", []Exchange{{Method: "POST", Path: "/v1/locate",
			Request: `{"nhsNumber":"999 000 0018"}`, Response: `{"lookupKey":"` + lookupURL + `"}`}}, nil},
		{"lookup key to the caller who sent the key", "", []Exchange{{Method: "POST", Path: "/v1/lookup",
			Request: `{"lookupKey":"` + lookupURL + `"}`, Response: `{"k":"` + hex.EncodeToString(lookup) + `"}`}}, nil},
		{"lookup key to anyone else", "", []Exchange{{Method: "POST", Path: "/v1/contact-requests",
			Request: `{"nodeId":"b"}`, Response: `{"lookupKey":"` + lookupURL + `"}`}}, []string{"the answer to POST /v1/contact-requests contains a lookup key"}},
		{"seal key even to the caller who sent the number", "", []Exchange{{Method: "POST", Path: "/v1/locate",
			Request: `{"nhsNumber":"9990000018"}`, Response: `{"s":"` + base64.StdEncoding.EncodeToString(seal) + `"}`}}, []string{"the answer to POST /v1/locate contains a seal key"}},
		{"number even to the caller who sent it", "", []Exchange{{Method: "POST", Path: "/v1/locate",
			Request: `{"nhsNumber":"9990000018"}`, Response: `{"error":{"message":"9990000018 is wrong"}}`}}, []string{"the answer to POST /v1/locate contains an NHS number"}},
		{"csrf in the sign-in answer", "", []Exchange{{Method: "POST", Path: "/v1/session",
			Response: `{"csrfToken":"csrf-Qx7vR2mK9pL4wT8zN1bY"}`}}, nil},
		{"csrf anywhere else", "", []Exchange{{Method: "GET", Path: "/v1/contact-requests",
			Response: `{"csrfToken":"csrf-Qx7vR2mK9pL4wT8zN1bY"}`}}, []string{"the answer to GET /v1/contact-requests contains a CSRF token"}},
		{"api token in an answer", "", []Exchange{{Method: "POST", Path: "/v1/records",
			Response: "400 Bad Request\nX-Debug: spt_abcdEFGH1234\n"}}, []string{"the answer to POST /v1/records contains an API token"}},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Scan(tc.logs, tc.exs)
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

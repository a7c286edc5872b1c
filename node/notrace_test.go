package node

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestRejectedRequestsLeaveNoTrace sends bad requests to every writing or
// looking endpoint: each gets the JSON error it should, and neither the
// records, nor the audit log, nor the locator replica changes.
func TestRejectedRequestsLeaveNoTrace(t *testing.T) {
	an := newAuthedNode(t)
	op, pr, au := an.tokens["operator"], an.tokens["practitioner"], an.tokens["auditor"]
	// One record exists, so that a refused delete or objection would
	// have something to remove.
	if r := an.do(t, "POST", "/v1/records", op, `{"localId":"kept","nhsNumber":"9990000018"}`); r.status != 201 {
		t.Fatalf("seed: %d %s", r.status, r.body)
	}
	big := `{"nhsNumber":"` + strings.Repeat("1", 70000) + `"}`
	key := `"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"`
	tests := []struct {
		name, method, path, token, ctype, body string
		status                                 int
		code                                   string
	}{
		{"record malformed", "POST", "/v1/records", op, "", `{`, 400, "bad_request"},
		{"record oversized", "POST", "/v1/records", op, "", big, 413, "too_large"},
		{"record invalid number", "POST", "/v1/records", op, "", `{"localId":"x","nhsNumber":"9990000013"}`, 400, "invalid_nhs_number"},
		{"record no credentials", "POST", "/v1/records", "", "", `{"localId":"x","nhsNumber":"9990000018"}`, 401, "unauthenticated"},
		{"record wrong credentials", "POST", "/v1/records", "spt_wrong", "", `{"localId":"x","nhsNumber":"9990000018"}`, 401, "unauthenticated"},
		{"record wrong content type", "POST", "/v1/records", op, "application/x-www-form-urlencoded", `localId=x`, 415, "unsupported_media_type"},
		{"delete unknown id", "DELETE", "/v1/records/nobody", op, "", "", 404, "not_found"},
		{"delete overlong id", "DELETE", "/v1/records/" + strings.Repeat("x", 200), op, "", "", 404, "not_found"},
		{"delete id with a control character", "DELETE", "/v1/records/ke%00pt", op, "", "", 404, "not_found"},
		{"delete wrong role", "DELETE", "/v1/records/kept", pr, "", "", 403, "forbidden"},
		{"delete no credentials", "DELETE", "/v1/records/kept", "", "", "", 401, "unauthenticated"},
		{"object unknown id", "POST", "/v1/records/nobody/objection", op, "", "", 404, "not_found"},
		{"object overlong id", "POST", "/v1/records/" + strings.Repeat("x", 200) + "/objection", op, "", "", 404, "not_found"},
		{"object id with an escaped slash", "POST", "/v1/records/ke%2Fpt/objection", op, "", "", 404, "not_found"},
		{"object wrong role", "POST", "/v1/records/kept/objection", au, "", "", 403, "forbidden"},
		{"locate unknown purpose", "POST", "/v1/locate", pr, "", `{"nhsNumber":"9990000018","purpose":"marketing"}`, 403, "purpose_not_authorised"},
		{"locate invalid number", "POST", "/v1/locate", pr, "", `{"nhsNumber":"12345","purpose":"safeguarding"}`, 400, "invalid_nhs_number"},
		{"locate oversized", "POST", "/v1/locate", pr, "", big, 413, "too_large"},
		{"evaluate malformed", "POST", "/v1/tokens/evaluate", pr, "", `{"purpose":1}`, 400, "bad_request"},
		{"lookup malformed", "POST", "/v1/lookup", pr, "", `{"lookupKey":`, 400, "bad_request"},
		{"lookup oversized", "POST", "/v1/lookup", pr, "", `{"lookupKey":"` + strings.Repeat("A", 70000) + `"}`, 413, "too_large"},
		{"lookup unknown field", "POST", "/v1/lookup", pr, "", `{` + key + `,"x":1}`, 400, "bad_request"},
		{"lookup seal key refused", "POST", "/v1/lookup", pr, "", `{` + key + `,"sealKey":"AAAA"}`, 400, "bad_request"},
		{"lookup bad key", "POST", "/v1/lookup", pr, "", `{"lookupKey":"abc"}`, 400, "invalid_lookup_key"},
		{"contact malformed", "POST", "/v1/contact-requests", pr, "", `{"nodeId":"b",`, 400, "bad_request"},
		{"contact oversized", "POST", "/v1/contact-requests", pr, "", `{"nodeId":"b","purpose":"safeguarding",` + key + `,"message":"` + strings.Repeat("m", 70000) + `"}`, 413, "too_large"},
		{"contact trailing data", "POST", "/v1/contact-requests", pr, "", `{"nodeId":"b","purpose":"safeguarding",` + key + `} []`, 400, "bad_request"},
		{"contact self", "POST", "/v1/contact-requests", pr, "", `{"nodeId":"a","purpose":"safeguarding",` + key + `}`, 400, "invalid_holder"},
		{"contact both subjects", "POST", "/v1/contact-requests", pr, "", `{"nodeId":"b","purpose":"safeguarding",` + key + `,"nhsNumber":"9990000018"}`, 400, "invalid_subject"},
		{"contact invalid number", "POST", "/v1/contact-requests", pr, "", `{"nodeId":"b","purpose":"safeguarding","nhsNumber":"9990000013"}`, 400, "invalid_nhs_number"},
		{"contact bad purpose", "POST", "/v1/contact-requests", pr, "", `{"nodeId":"b","purpose":"x",` + key + `}`, 403, "purpose_not_authorised"},
		{"contact long message", "POST", "/v1/contact-requests", pr, "", `{"nodeId":"b","purpose":"safeguarding",` + key + `,"message":"` + strings.Repeat("m", 600) + `"}`, 400, "message_too_long"},
		{"subject access invalid", "POST", "/v1/audit/subject-access", au, "", `{"nhsNumber":"999"}`, 400, "invalid_nhs_number"},
		{"import wrong role", "POST", "/v1/records/import", pr, "text/csv", `r1,9990000018`, 403, "forbidden"},
	}
	before := an.trace(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, an.srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			ct := tc.ctype
			if ct == "" && tc.body != "" {
				ct = "application/json"
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			r := send(t, http.DefaultClient, req)
			if r.status != tc.status || r.errCode() != tc.code || !isErrorShape(r.body) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if got := an.trace(t); got != before {
				t.Fatalf("trace changed: %+v, was %+v", got, before)
			}
		})
	}
}

// TestCookieWritesNeedCSRF sends every cookie-authenticated write without
// the session's X-CSRF-Token, from a browser signed in with a role that
// may do it: each is refused with 403 csrf_missing and leaves no trace;
// the same request with the token then succeeds, so the refusal was the
// missing token and nothing else.
func TestCookieWritesNeedCSRF(t *testing.T) {
	an := newAuthedNode(t)
	if r := an.do(t, "POST", "/v1/records", an.tokens["operator"], `{"localId":"kept","nhsNumber":"9990000018"}`); r.status != 201 {
		t.Fatalf("seed: %d %s", r.status, r.body)
	}
	tests := []struct {
		role, method, path, body string
		status                   int  // with the token
		publishes                bool // with the token, the replica changes
	}{
		{"operator", "POST", "/v1/records", `{"localId":"new","nhsNumber":"9990000026"}`, 201, true},
		{"operator", "POST", "/v1/records/import", "", 200, false},
		{"operator", "POST", "/v1/records/kept/objection", "", 204, true},
		{"operator", "DELETE", "/v1/records/new", "", 204, true},
		{"practitioner", "POST", "/v1/locate", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`, 200, false},
		{"practitioner", "POST", "/v1/tokens/evaluate", `{"purpose":"safeguarding","blinded":["AAEC"]}`, 200, false},
		{"practitioner", "POST", "/v1/lookup", `{"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA","purpose":"safeguarding"}`, 200, false},
		{"practitioner", "POST", "/v1/contact-requests", `{"nodeId":"b","purpose":"safeguarding","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"}`, 503, false},
		{"auditor", "POST", "/v1/audit/subject-access", `{"nhsNumber":"9990000018"}`, 200, false},
		{"practitioner", "DELETE", "/v1/session", "", 204, false},
	}
	browsers := map[string]*browser{}
	for _, r := range []string{"practitioner", "operator", "auditor"} {
		browsers[r] = an.login(t, r)
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			b := browsers[tc.role]
			before := an.trace(t)
			r := b.do(t, tc.method, tc.path, tc.body, false)
			if r.status != 403 || r.errCode() != "csrf_missing" || !isErrorShape(r.body) {
				t.Fatalf("without the token: %d %s", r.status, r.body)
			}
			if got := an.trace(t); got != before {
				t.Fatalf("trace changed: %+v, was %+v", got, before)
			}
			if r := b.do(t, tc.method, tc.path, tc.body, true); r.status != tc.status {
				t.Fatalf("with the token: %d %s, want %d", r.status, r.body, tc.status)
			}
			if changed := an.trace(t).replica != before.replica; changed != tc.publishes {
				t.Fatalf("with the token, replica changed: %v, want %v", changed, tc.publishes)
			}
		})
	}
	// Signed out with the token above, the session is gone.
	if r := browsers["practitioner"].do(t, "GET", "/v1/contact-requests", "", false); r.status != 401 {
		t.Fatalf("after sign-out: %d %s", r.status, r.body)
	}
}

// TestWatchOriginAndLimits: a browser on another origin cannot open a
// watch; a bad message gets an error notice, not a dropped connection.
func TestWatchOriginAndLimits(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", nil)
	url := "ws" + strings.TrimPrefix(a.srv.URL, "http") + "/v1/watch"
	hdr := http.Header{"Authorization": {"Bearer prac-token"}, "Origin": {"https://evil.example"}}
	if _, res, err := websocket.DefaultDialer.Dial(url, hdr); err == nil || res == nil || res.StatusCode != 403 {
		t.Fatalf("foreign origin: %v %v", err, res)
	}
	// A plain GET is refused in the API's error shape.
	if r := a.do(t, "GET", "/v1/watch", "prac-token", ""); r.status != 400 || r.errCode() != "websocket_required" || !isErrorShape(r.body) {
		t.Fatalf("plain GET: %d %s", r.status, r.body)
	}
	hdr.Set("Origin", a.srv.URL)
	conn, _, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(`{"watch":"short"}`))
	var nt Notice
	if err := conn.ReadJSON(&nt); err != nil || nt.Type != "error" {
		t.Fatalf("bad key: %v %+v", err, nt)
	}
	conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", wsReadLimit+1)))
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Fatal("oversized message did not close the connection")
	}
}

package node

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestRejectedRequestsLeaveNoTrace sends bad requests to every writing or
// looking endpoint: each gets a clear JSON error and neither the records
// nor the audit log (nor the locator) changes.
func TestRejectedRequestsLeaveNoTrace(t *testing.T) {
	an := newAuthedNode(t)
	op, pr, au := an.tokens["operator"], an.tokens["practitioner"], an.tokens["auditor"]
	big := `{"nhsNumber":"` + strings.Repeat("1", 70000) + `"}`
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"record malformed", "POST", "/v1/records", op, `{`, 400, "bad_request"},
		{"record oversized", "POST", "/v1/records", op, big, 413, "too_large"},
		{"record invalid number", "POST", "/v1/records", op, `{"localId":"x","nhsNumber":"9990000013"}`, 400, "invalid_nhs_number"},
		{"record no credentials", "POST", "/v1/records", "", `{"localId":"x","nhsNumber":"9990000018"}`, 401, "unauthenticated"},
		{"record wrong credentials", "POST", "/v1/records", "spt_wrong", `{"localId":"x","nhsNumber":"9990000018"}`, 401, "unauthenticated"},
		{"record wrong content type", "POST", "/v1/records", op, `localId=x`, 415, "unsupported_media_type"},
		{"locate unknown purpose", "POST", "/v1/locate", pr, `{"nhsNumber":"9990000018","purpose":"marketing"}`, 403, "purpose_not_authorised"},
		{"locate invalid number", "POST", "/v1/locate", pr, `{"nhsNumber":"12345","purpose":"safeguarding"}`, 400, "invalid_nhs_number"},
		{"locate oversized", "POST", "/v1/locate", pr, big, 413, "too_large"},
		{"evaluate malformed", "POST", "/v1/tokens/evaluate", pr, `{"purpose":1}`, 400, "bad_request"},
		{"lookup seal key refused", "POST", "/v1/lookup", pr, `{"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA","sealKey":"AAAA"}`, 400, "bad_request"},
		{"contact self", "POST", "/v1/contact-requests", pr, `{"nodeId":"a","purpose":"safeguarding","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"}`, 400, "invalid_holder"},
		{"contact both subjects", "POST", "/v1/contact-requests", pr, `{"nodeId":"b","purpose":"safeguarding","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA","nhsNumber":"9990000018"}`, 400, "invalid_subject"},
		{"contact bad purpose", "POST", "/v1/contact-requests", pr, `{"nodeId":"b","purpose":"x","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"}`, 403, "purpose_not_authorised"},
		{"contact long message", "POST", "/v1/contact-requests", pr, `{"nodeId":"b","purpose":"safeguarding","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA","message":"` + strings.Repeat("m", 600) + `"}`, 400, "message_too_long"},
		{"subject access invalid", "POST", "/v1/audit/subject-access", au, `{"nhsNumber":"999"}`, 400, "invalid_nhs_number"},
		{"import wrong role", "POST", "/v1/records/import", pr, `r1,9990000018`, 403, "forbidden"},
	}
	size := an.log.Head().Size
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, an.srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			ct := "application/json"
			if tc.code == "unsupported_media_type" {
				ct = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", ct)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			r := an.do(t, tc.method, tc.path, tc.token, tc.body)
			if tc.code != "unsupported_media_type" && (r.status != tc.status || r.errCode() != tc.code) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if an.count(t) != 0 {
				t.Fatal("a record was written")
			}
			if got := an.log.Head().Size; got != size {
				t.Fatalf("audit log grew from %d to %d", size, got)
			}
		})
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
	hdr.Set("Origin", a.srv.URL)
	conn, _, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.WriteMessage(websocket.TextMessage, []byte(`{"watch":"short"}`))
	var nt notice
	if err := conn.ReadJSON(&nt); err != nil || nt.Type != "error" {
		t.Fatalf("bad key: %v %+v", err, nt)
	}
	conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", wsReadLimit+1)))
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Fatal("oversized message did not close the connection")
	}
}

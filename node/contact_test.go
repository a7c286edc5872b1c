package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestContactPolicy: with "accept" the holder answers with its contact at
// once; with "refer" it answers "pending". Either way it records the
// request for its own staff and tells the ones watching; the requester
// never sends the NHS number to the holder.
func TestContactPolicy(t *testing.T) {
	for _, policy := range []string{"accept", "refer"} {
		t.Run(policy, func(t *testing.T) {
			ns, _ := wasmNodes(t, map[string][]string{"csc": {"safeguarding"}, "gp": {"safeguarding"}}, 1, "csc")
			ns["gp"].cfg.ContactPolicy = policy
			ns["gp"].cfg.Contact = "Duty desk (synthetic)"
			if r := ns["gp"].do(t, "POST", "/v1/records", "op-token", `{"localId":"g1","nhsNumber":"9990000018"}`); r.status != 201 {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ns["gp"].srv.URL, "http")+"/v1/watch",
				map[string][]string{"Authorization": {"Bearer prac-token"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := ns["csc"].do(t, "POST", "/v1/contact-requests", "prac-token", `{"nodeId":"gp","purpose":"safeguarding","nhsNumber":"9990000018","message":"please call"}`)
			var ans ContactAnswer
			json.Unmarshal([]byte(r.body), &ans)
			want := map[string]string{"accept": "accepted", "refer": "pending"}[policy]
			if r.status != 200 || ans.Status != want || (policy == "accept") != (ans.Contact != "") {
				t.Fatalf("answer: %d %s", r.status, r.body)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			var nt Notice
			if err := conn.ReadJSON(&nt); err != nil || nt.Type != "contact-request" || nt.Contact == nil || nt.Contact.LocalID != "g1" || nt.Contact.NodeID != "csc" {
				t.Fatalf("staff notice: %v %+v", err, nt)
			}
			r = ns["gp"].do(t, "GET", "/v1/contact-requests", "op-token", "")
			state := map[string]string{"accept": "answered", "refer": "new"}[policy]
			if !strings.Contains(r.body, `"localId":"g1"`) || !strings.Contains(r.body, `"state":"`+state+`"`) {
				t.Fatalf("received list: %s", r.body)
			}
			// Nobody at the holder under that key: the holder's 404 is the
			// requester's, not an outage.
			r = ns["csc"].do(t, "POST", "/v1/contact-requests", "prac-token", `{"nodeId":"gp","purpose":"safeguarding","nhsNumber":"9990000026"}`)
			if r.status != 404 || r.errCode() != "no_record" || !isErrorShape(r.body) {
				t.Fatalf("no record at holder: %d %s", r.status, r.body)
			}
		})
	}
}

// stubPeers answers every peer call with err.
type stubPeers struct{ err error }

func (p stubPeers) Call(context.Context, string, string, any, any) error { return p.err }
func (p stubPeers) Agency(id string) string                              { return "Agency " + id }
func (p stubPeers) Purposes(string) []string                             { return []string{"safeguarding"} }
func (p stubPeers) MemberKeys() []MemberKey                              { return nil }

// TestContactHolderAnswers: whatever the holder answers, the requester
// gets the right status and a JSON error — the holder holding nothing is
// 404, its refusals pass through, a holder refusing this node's
// credentials or failing is 502, an unreachable holder 502 and a slow one
// 504 — and the attempt is audited with the right outcome.
func TestContactHolderAnswers(t *testing.T) {
	timeout := &url.Error{Op: "Post", URL: "https://gp/peer/v1/contact-requests", Err: context.DeadlineExceeded}
	refused := fmt.Errorf("node: call gp: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
	tests := []struct {
		name    string
		err     error
		status  int
		code    string
		outcome string
	}{
		{"no record", &PeerError{Status: 404, Code: "no_record", Message: "this agency holds no current record under that key"}, 404, "no_record", "denied"},
		{"purpose refused", &PeerError{Status: 403, Code: "purpose_not_authorised", Message: "the requesting node is not authorised for that purpose"}, 403, "purpose_not_authorised", "denied"},
		{"too long", &PeerError{Status: 400, Code: "too_long", Message: "message or requester too long"}, 400, "too_long", "denied"},
		{"holder rate limit", &PeerError{Status: 429, Code: "rate_limited", Message: "slow down"}, 429, "rate_limited", "denied"},
		{"holder refuses this node", &PeerError{Status: 401, Code: "unauthenticated", Message: "peer not authenticated"}, 502, "holder_refused", "denied"},
		{"holder without the endpoint", &PeerError{Status: 404, Code: "not_found", Message: "no such endpoint"}, 502, "holder_failed", "error"},
		{"holder fails", &PeerError{Status: 500, Code: "internal", Message: "internal error"}, 502, "holder_failed", "error"},
		{"unreachable", refused, 502, "holder_unreachable", "error"},
		{"timeout", fmt.Errorf("node: call gp: %w", timeout), 504, "holder_timeout", "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aud := &countingAudit{}
			a := newTestNodeWith(t, newFakeFed(), "a", nil, func(o *Options) { o.Peers, o.Audit = stubPeers{tc.err}, aud })
			r := a.do(t, "POST", "/v1/contact-requests", "prac-token", `{"nodeId":"gp","purpose":"safeguarding","lookupKey":"AAAAAAAAAAAAAAAAAAAAAA"}`)
			if r.status != tc.status || r.errCode() != tc.code || !isErrorShape(r.body) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if tc.status < 500 && strings.Contains(r.body, "did not answer") {
				t.Fatalf("a refusal reported as an outage: %s", r.body)
			}
			evs := aud.all()
			if len(evs) != 1 || evs[0].Action != "contact-request-sent" || evs[0].Outcome != tc.outcome || evs[0].Peer != "gp" {
				t.Fatalf("audit: %+v", evs)
			}
		})
	}
}

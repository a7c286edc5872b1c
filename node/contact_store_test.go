package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// contactNet joins test nodes over an in-process peer transport in which
// a node can be taken down (its peers' calls fail as if unreachable).
type contactNet struct {
	mu    sync.Mutex
	nodes map[string]*Node
	down  map[string]bool
}

type netPeers struct {
	net  *contactNet
	self string
}

func (p netPeers) Call(ctx context.Context, nodeID, path string, in, out any) error {
	p.net.mu.Lock()
	n, down := p.net.nodes[nodeID], p.net.down[nodeID]
	p.net.mu.Unlock()
	if n == nil || down {
		return &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return (&fakePeers{self: p.self, nodes: map[string]*Node{nodeID: n}}).Call(ctx, nodeID, path, in, out)
}
func (p netPeers) Agency(id string) string      { return "Agency " + id }
func (p netPeers) Purposes(string) []string     { return []string{"safeguarding"} }
func (p netPeers) MemberKeys() []MemberKey      { return nil }
func (c *contactNet) setDown(id string, d bool) { c.mu.Lock(); c.down[id] = d; c.mu.Unlock() }

// contactTokens: two practitioners, so that "my requests" can be told
// apart from a colleague's.
var contactTokens = StaticTokens{
	"op-token":    {Name: "op", Role: RoleOperator},
	"prac-token":  {Name: "prac", Role: RolePractitioner},
	"prac2-token": {Name: "prac2", Role: RolePractitioner},
	"audit-token": {Name: "aud", Role: RoleAuditor},
}

type contactSide struct {
	id, dir, policy string
	aud             *countingAudit
	clock           *testClock
	tn              *testNode
}

// start (re)starts the node on its data directory, as a restart would.
func (c *contactNet) start(t *testing.T, s *contactSide) *testNode {
	t.Helper()
	n, err := New(func() Config {
		cfg := DefaultConfig()
		cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir = s.id, "Agency "+s.id, "school", s.dir
		cfg.Purposes, cfg.ContactPolicy, cfg.Contact = []string{"safeguarding"}, s.policy, "Duty desk "+s.id
		return cfg
	}(), Options{Tokenizer: &fakeTokenizer{}, Index: newFakeFed().index(s.id, "Agency "+s.id), Keyring: soloKeyring(s.id),
		Auth: contactTokens, Audit: s.aud, Now: s.clock.Now, Peers: netPeers{c, s.id}, Logger: slog.New(slog.NewTextHandler(testLogs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(func() {
		srv.Close()
		n.Shutdown(context.Background())
	})
	c.mu.Lock()
	c.nodes[s.id] = n
	c.mu.Unlock()
	s.tn = &testNode{Node: n, srv: srv}
	return s.tn
}

// stop shuts the node down (its store closed: what it acknowledged is on
// disk).
func (c *contactNet) stop(t *testing.T, s *contactSide) {
	t.Helper()
	s.tn.srv.Close()
	if err := s.tn.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	delete(c.nodes, s.id)
	c.mu.Unlock()
}

// contactPair is a requester (csc) and a holder (gp, policy "refer") that
// holds record g1 for 9990000018.
func contactPair(t *testing.T) (*contactNet, *contactSide, *contactSide) {
	t.Helper()
	c := &contactNet{nodes: map[string]*Node{}, down: map[string]bool{}}
	clock := newTestClock()
	csc := &contactSide{id: "csc", dir: t.TempDir(), policy: "accept", aud: &countingAudit{}, clock: clock}
	gp := &contactSide{id: "gp", dir: t.TempDir(), policy: "refer", aud: &countingAudit{}, clock: clock}
	c.start(t, csc)
	c.start(t, gp)
	if r := gp.tn.do(t, "POST", "/v1/records", "op-token", `{"localId":"g1","nhsNumber":"9990000018"}`); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	return c, csc, gp
}

type contactList struct {
	Received []ContactView `json:"received"`
	Sent     []ContactView `json:"sent"`
}

func listContacts(t *testing.T, tn *testNode, token string) contactList {
	t.Helper()
	r := tn.do(t, "GET", "/v1/contact-requests", token, "")
	var l contactList
	if r.status != 200 || json.Unmarshal([]byte(r.body), &l) != nil {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	return l
}

// ask sends a contact request from csc's practitioner and returns
// csc's id for it and gp's.
func ask(t *testing.T, csc, gp *contactSide, token string) (sentID, receivedID string) {
	t.Helper()
	r := csc.tn.do(t, "POST", "/v1/contact-requests", token, `{"nodeId":"gp","purpose":"safeguarding","nhsNumber":"9990000018","message":"please call"}`)
	var ans ContactAnswer
	if r.status != 200 || json.Unmarshal([]byte(r.body), &ans) != nil || ans.Status != "pending" || ans.ID == "" {
		t.Fatalf("ask: %d %s", r.status, r.body)
	}
	l := listContacts(t, gp.tn, "op-token")
	if len(l.Received) == 0 || l.Received[0].State != "new" || l.Received[0].LocalID != "g1" {
		t.Fatalf("holder inbox: %+v", l)
	}
	return ans.ID, l.Received[0].ID
}

func actions(a *countingAudit, prefix string) []string {
	var out []string
	for _, e := range a.all() {
		if strings.HasPrefix(e.Action, prefix) {
			out = append(out, e.Action+"/"+e.Outcome+"/"+e.Actor)
		}
	}
	return out
}

// TestContactDecisions: the holder's staff answer a request with a named
// contact or decline it with a reason, once; every refusal is a typed
// JSON error and changes nothing; each transition is audited at the
// holder (by the person who decided), delivered to the requester, and
// audited there.
func TestContactDecisions(t *testing.T) {
	answer := `{"contact":"Jo Bloggs, practice safeguarding lead, 01632 960123"}`
	decline := `{"reason":"we discharged this patient last year"}`
	type step struct {
		token, verb, body string
		other             string // "sent": the requester's id at the holder; "unknown": a fresh id
		status            int
		code              string
	}
	tests := []struct {
		name       string
		steps      []step
		state      string // at both ends, after
		holderAud  []string
		requestAud []string
	}{
		{"answered", []step{{"op-token", "answer", answer, "", 200, ""}}, "answered",
			[]string{"contact-request-received/ok/node:csc", "contact-request-answered/ok/op", "contact-answer-sent/ok/node:gp"},
			[]string{"contact-request-sent/ok/prac", "contact-answer-received/ok/node:gp"}},
		{"declined by a practitioner", []step{{"prac-token", "decline", decline, "", 200, ""}}, "declined",
			[]string{"contact-request-received/ok/node:csc", "contact-request-declined/ok/prac", "contact-answer-sent/ok/node:gp"},
			[]string{"contact-request-sent/ok/prac", "contact-answer-received/ok/node:gp"}},
		{"no answering twice", []step{{"op-token", "answer", answer, "", 200, ""}, {"op-token", "answer", answer, "", 409, "contact_request_decided"}}, "answered",
			[]string{"contact-request-received/ok/node:csc", "contact-request-answered/ok/op", "contact-answer-sent/ok/node:gp"},
			[]string{"contact-request-sent/ok/prac", "contact-answer-received/ok/node:gp"}},
		{"no un-declining", []step{{"op-token", "decline", decline, "", 200, ""}, {"prac-token", "answer", answer, "", 409, "contact_request_decided"}}, "declined",
			[]string{"contact-request-received/ok/node:csc", "contact-request-declined/ok/op", "contact-answer-sent/ok/node:gp"},
			[]string{"contact-request-sent/ok/prac", "contact-answer-received/ok/node:gp"}},
		{"invalid answers change nothing", []step{
			{"op-token", "answer", `{"contact":""}`, "", 400, "invalid_text"},
			{"op-token", "answer", `{"contact":"Jo\nBloggs"}`, "", 400, "invalid_text"},
			{"op-token", "answer", `{"contact":"` + strings.Repeat("x", 301) + `"}`, "", 400, "invalid_text"},
			{"op-token", "answer", `{"contact":"Jo","reason":"x"}`, "", 400, "invalid_text"},
			{"op-token", "decline", `{"reason":"  "}`, "", 400, "invalid_text"},
			{"op-token", "decline", `{"reason":"x","extra":1}`, "", 400, "bad_request"},
			{"op-token", "answer", answer, "unknown", 404, "contact_request_not_found"},
			{"op-token", "answer", answer, "sent", 404, "contact_request_not_found"},
			{"op-token", "answer", answer, "junk", 404, "contact_request_not_found"},
			{"audit-token", "answer", answer, "", 403, "forbidden"},
		}, "new", []string{"contact-request-received/ok/node:csc"}, []string{"contact-request-sent/ok/prac"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, csc, gp := contactPair(t)
			sentID, recvID := ask(t, csc, gp, "prac-token")
			for i, s := range tc.steps {
				id := recvID
				switch s.other {
				case "sent":
					id = sentID
				case "unknown":
					id = "AAAAAAAAAAAAAAAAAAAAAA"
				case "junk":
					id = "not-an-id"
				}
				r := gp.tn.do(t, "POST", "/v1/contact-requests/"+id+"/"+s.verb, s.token, s.body)
				if r.status != s.status || s.code != "" && (r.errCode() != s.code || !isErrorShape(r.body)) {
					t.Fatalf("step %d: %d %s, want %d %s", i, r.status, r.body, s.status, s.code)
				}
				if r.status == 200 {
					var v ContactView
					json.Unmarshal([]byte(r.body), &v)
					if v.Delivery != "delivered" || v.State == "new" {
						t.Fatalf("step %d: %s", i, r.body)
					}
				}
			}
			hl, rl := listContacts(t, gp.tn, "op-token"), listContacts(t, csc.tn, "prac-token")
			if len(hl.Received) != 1 || hl.Received[0].State != tc.state || len(rl.Sent) != 1 || rl.Sent[0].State != tc.state || rl.Sent[0].ID != sentID {
				t.Fatalf("state: holder %+v requester %+v, want %s", hl.Received, rl.Sent, tc.state)
			}
			if tc.state == "answered" && rl.Sent[0].Contact != "Jo Bloggs, practice safeguarding lead, 01632 960123" ||
				tc.state == "declined" && rl.Sent[0].Reason != "we discharged this patient last year" {
				t.Fatalf("requester sees %+v", rl.Sent[0])
			}
			if got := actions(gp.aud, "contact-"); !slices.Equal(got, tc.holderAud) {
				t.Errorf("holder audit %q, want %q", got, tc.holderAud)
			}
			if got := actions(csc.aud, "contact-"); !slices.Equal(got, tc.requestAud) {
				t.Errorf("requester audit %q, want %q", got, tc.requestAud)
			}
			for _, e := range append(gp.aud.all(), csc.aud.all()...) {
				if strings.HasPrefix(e.Action, "contact-") && e.Outcome == "ok" && len(e.Subject) != 1 {
					t.Errorf("%s names no subject", e.Action)
				}
			}
		})
	}
}

// TestContactMyRequests: a practitioner lists their own sent requests, an
// operator all the node's; the received inbox is the agency's.
func TestContactMyRequests(t *testing.T) {
	_, csc, gp := contactPair(t)
	a, _ := ask(t, csc, gp, "prac-token")
	b, _ := ask(t, csc, gp, "prac2-token")
	for token, want := range map[string][]string{"prac-token": {a}, "prac2-token": {b}, "op-token": {b, a}} {
		var got []string
		for _, v := range listContacts(t, csc.tn, token).Sent {
			got = append(got, v.ID)
		}
		if !slices.Equal(got, want) && !(token == "op-token" && slices.Equal(got, []string{a, b})) {
			t.Errorf("%s sees %v, want %v", token, got, want)
		}
	}
	if l := listContacts(t, gp.tn, "prac-token"); len(l.Received) != 2 || len(l.Sent) != 0 {
		t.Errorf("holder inbox: %+v", l)
	}
}

// TestContactAnswerLive: the practitioner who asked is told of the
// decision on their open page (a contact-answer notice); a colleague is
// not.
func TestContactAnswerLive(t *testing.T) {
	_, csc, gp := contactPair(t)
	dial := func(token string) *websocket.Conn {
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(csc.tn.srv.URL, "http")+"/v1/watch",
			http.Header{"Authorization": {"Bearer " + token}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	mine, other := dial("prac-token"), dial("prac2-token")
	sentID, recvID := ask(t, csc, gp, "prac-token")
	if r := gp.tn.do(t, "POST", "/v1/contact-requests/"+recvID+"/answer", "op-token", `{"contact":"Jo, 01632 960123"}`); r.status != 200 {
		t.Fatalf("answer: %d %s", r.status, r.body)
	}
	mine.SetReadDeadline(time.Now().Add(10 * time.Second))
	var nt Notice
	if err := mine.ReadJSON(&nt); err != nil || nt.Type != "contact-answer" || nt.Contact == nil || nt.Contact.ID != sentID || nt.Contact.Contact != "Jo, 01632 960123" || nt.Contact.Agency != "Agency gp" {
		t.Fatalf("notice: %v %+v", err, nt)
	}
	// The colleague's socket gets nothing: a ping from the test side is
	// answered by the node's read loop, not by a notice.
	other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if err := other.ReadJSON(&nt); err == nil {
		t.Fatalf("a colleague was told: %+v", nt)
	}
}

// TestContactPeerAnswer: the requester takes a decision only from the node
// it asked, only for a request it sent, once; a repeat of the same
// decision (its acknowledgement lost) is acknowledged again.
func TestContactPeerAnswer(t *testing.T) {
	_, csc, gp := contactPair(t)
	sentID, _ := ask(t, csc, gp, "prac-token")
	call := func(peer, body string) resp {
		req := httptest.NewRequest("POST", PeerContactAnswerPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		csc.tn.PeerHandler(func(*http.Request) (string, bool) { return peer, true }).ServeHTTP(rec, req)
		return resp{rec.Code, rec.Body.String(), rec.Header()}
	}
	ans := `{"id":"` + sentID + `","state":"answered","contact":"Jo"}`
	for _, tc := range []struct {
		name, peer, body string
		status           int
		code             string
	}{
		{"another node", "school", ans, 404, "contact_request_not_found"},
		{"unknown id", "gp", `{"id":"AAAAAAAAAAAAAAAAAAAAAA","state":"answered","contact":"Jo"}`, 404, "contact_request_not_found"},
		{"not a state", "gp", `{"id":"` + sentID + `","state":"accepted","contact":"Jo"}`, 400, "invalid_text"},
		{"no contact", "gp", `{"id":"` + sentID + `","state":"answered"}`, 400, "invalid_text"},
		{"answered", "gp", ans, 200, ""},
		{"repeat", "gp", ans, 200, ""},
		{"different decision", "gp", `{"id":"` + sentID + `","state":"declined","reason":"no"}`, 409, "contact_request_decided"},
	} {
		r := call(tc.peer, tc.body)
		if r.status != tc.status || tc.code != "" && r.errCode() != tc.code {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	if got := actions(csc.aud, "contact-answer-received"); len(got) != 1 {
		t.Errorf("received audited %d times", len(got))
	}
	if l := listContacts(t, csc.tn, "prac-token"); l.Sent[0].State != "answered" || l.Sent[0].Contact != "Jo" {
		t.Errorf("sent: %+v", l.Sent)
	}
}

// TestContactDurable: requests, decisions and undelivered decisions
// survive restarts of both nodes; a decision the requester could not take
// is retried (on the node's clock) until it is delivered, after the
// holder restarted too.
func TestContactDurable(t *testing.T) {
	c, csc, gp := contactPair(t)
	sentID, recvID := ask(t, csc, gp, "prac-token")
	c.stop(t, csc)
	c.stop(t, gp)
	c.start(t, gp)
	c.start(t, csc)
	if l := listContacts(t, gp.tn, "op-token"); len(l.Received) != 1 || l.Received[0].ID != recvID || l.Received[0].State != "new" || l.Received[0].Message != "please call" {
		t.Fatalf("holder after restart: %+v", l)
	}
	if l := listContacts(t, csc.tn, "prac-token"); len(l.Sent) != 1 || l.Sent[0].ID != sentID || l.Sent[0].State != "new" {
		t.Fatalf("requester after restart: %+v", l)
	}
	// The requester is unreachable when the holder answers: the decision
	// is kept, pending delivery, across a holder restart.
	c.setDown("csc", true)
	r := gp.tn.do(t, "POST", "/v1/contact-requests/"+recvID+"/answer", "op-token", `{"contact":"Jo, 01632 960123"}`)
	var v ContactView
	if json.Unmarshal([]byte(r.body), &v); r.status != 200 || v.State != "answered" || v.Delivery != "pending" {
		t.Fatalf("answer while requester down: %d %s", r.status, r.body)
	}
	c.stop(t, gp)
	c.start(t, gp)
	if body := gp.tn.do(t, "GET", "/metrics", "", "").body; !strings.Contains(body, MetricUndelivered+" 1") {
		t.Errorf("metrics do not count the undelivered decision")
	}
	gp.tn.retryContactDecisions(context.Background()) // not due yet: no attempt
	if l := listContacts(t, gp.tn, "op-token"); l.Received[0].Delivery != "pending" {
		t.Fatalf("delivered while down: %+v", l.Received[0])
	}
	c.setDown("csc", false)
	gp.tn.retryContactDecisions(context.Background())
	if l := listContacts(t, csc.tn, "prac-token"); l.Sent[0].State != "new" {
		t.Fatalf("retried before its time: %+v", l.Sent[0])
	}
	gp.clock.Advance(contactRetryBase)
	gp.tn.retryContactDecisions(context.Background())
	if l := listContacts(t, gp.tn, "op-token"); l.Received[0].Delivery != "delivered" {
		t.Fatalf("holder after retry: %+v", l.Received[0])
	}
	c.stop(t, csc)
	c.start(t, csc)
	if l := listContacts(t, csc.tn, "prac-token"); l.Sent[0].State != "answered" || l.Sent[0].Contact != "Jo, 01632 960123" {
		t.Fatalf("requester after retry and restart: %+v", l.Sent[0])
	}
	if got := actions(gp.aud, "contact-answer-sent"); !slices.Equal(got, []string{"contact-answer-sent/ok/node:gp"}) {
		t.Errorf("holder delivery audit: %q", got)
	}
	for _, tc := range []struct {
		tn    *testNode
		wants []string
	}{
		{gp.tn, []string{MetricUndelivered + " 0", MetricContacts + `{side="received",state="answered"} 1`, MetricContacts + `{side="received",state="new"} 0`}},
		{csc.tn, []string{MetricContacts + `{side="sent",state="answered"} 1`}},
	} {
		body := tc.tn.do(t, "GET", "/metrics", "", "").body
		for _, want := range tc.wants {
			if !strings.Contains(body, want) {
				t.Errorf("%s: metrics lack %s", tc.tn.cfg.NodeID, want)
			}
		}
	}
}

// TestContactGiveUp: a requester that no longer knows the request (it
// expired there) refuses the decision; the holder stops retrying and
// audits that it was not delivered.
func TestContactGiveUp(t *testing.T) {
	c, csc, gp := contactPair(t)
	sentID, recvID := ask(t, csc, gp, "prac-token")
	if err := csc.tn.contacts.Delete(sentID); err != nil {
		t.Fatal(err)
	}
	_ = c
	r := gp.tn.do(t, "POST", "/v1/contact-requests/"+recvID+"/decline", "op-token", `{"reason":"not known"}`)
	var v ContactView
	if json.Unmarshal([]byte(r.body), &v); r.status != 200 || v.Delivery != "failed" {
		t.Fatalf("decline: %d %s", r.status, r.body)
	}
	if due, _ := gp.tn.contacts.Due(gp.clock.Now().Add(time.Hour)); len(due) != 0 {
		t.Fatalf("still due: %d", len(due))
	}
	if got := actions(gp.aud, "contact-answer-sent"); !slices.Equal(got, []string{"contact-answer-sent/denied/node:gp"}) {
		t.Errorf("audit: %q", got)
	}
}

// TestContactRetention: a request unchanged for contact_retention is
// deleted by the sweep, on both sides, and each deletion is audited; one
// changed since is kept.
func TestContactRetention(t *testing.T) {
	_, csc, gp := contactPair(t)
	ask(t, csc, gp, "prac-token")
	gp.clock.Advance(60 * 24 * time.Hour)
	_, recvID := ask(t, csc, gp, "prac-token")
	gp.clock.Advance(31 * 24 * time.Hour) // the first is 91 days old, the second 31
	for _, s := range []*contactSide{csc, gp} {
		n, err := s.tn.sweepContacts(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("%s sweep: %v %d", s.id, err, n)
		}
		if got := actions(s.aud, "contact-request-expired"); len(got) != 1 || got[0] != "contact-request-expired/ok/node:"+s.id {
			t.Errorf("%s audit: %q", s.id, got)
		}
	}
	if l := listContacts(t, gp.tn, "op-token"); len(l.Received) != 1 || l.Received[0].ID != recvID {
		t.Fatalf("kept: %+v", l.Received)
	}
	if l := listContacts(t, csc.tn, "op-token"); len(l.Sent) != 1 {
		t.Fatalf("kept at the requester: %+v", l.Sent)
	}
	// A decision is a change: the answered request lives 90 days from it.
	gp.clock.Advance(80 * 24 * time.Hour)
	gp.tn.do(t, "POST", "/v1/contact-requests/"+recvID+"/answer", "op-token", `{"contact":"Jo"}`)
	gp.clock.Advance(30 * 24 * time.Hour)
	if n, _ := gp.tn.sweepContacts(context.Background()); n != 0 {
		t.Fatalf("deleted %d answered 30 days ago", n)
	}
}

// TestContactAcceptPushedAgain: an answer by the holder's "accept" policy
// travels in the reply and once more, later, like a person's decision: a
// requester that stopped before committing the reply still gets it, and
// one that has it acknowledges the repeat without a second audit line.
func TestContactAcceptPushedAgain(t *testing.T) {
	c, csc, gp := contactPair(t)
	c.stop(t, gp)
	gp.policy = "accept"
	c.start(t, gp)
	ask := func() string {
		r := csc.tn.do(t, "POST", "/v1/contact-requests", "prac-token", `{"nodeId":"gp","purpose":"safeguarding","nhsNumber":"9990000018"}`)
		var ans ContactAnswer
		if json.Unmarshal([]byte(r.body), &ans); r.status != 200 || ans.Status != "accepted" || ans.Contact != "Duty desk gp" {
			t.Fatalf("ask: %d %s", r.status, r.body)
		}
		return ans.ID
	}
	kept, lost := ask(), ask()
	// The requester "stopped" before committing the second reply: its copy
	// is still new.
	rec, err := csc.tn.contacts.Get(lost)
	if err != nil {
		t.Fatal(err)
	}
	rec.State, rec.Contact, rec.DecidedBy = "new", "", ""
	if err := csc.tn.contacts.Delete(lost); err != nil {
		t.Fatal(err)
	}
	if err := csc.tn.contacts.Create(rec); err != nil {
		t.Fatal(err)
	}
	if l := listContacts(t, gp.tn, "op-token"); len(l.Received) != 2 || l.Received[0].Delivery != "pending" || l.Received[0].DecidedBy != "policy" {
		t.Fatalf("holder: %+v", l.Received)
	}
	gp.tn.retryContactDecisions(context.Background()) // not yet due
	if got, _ := csc.tn.contacts.Get(lost); got.State != "new" {
		t.Fatal("pushed before its time")
	}
	gp.clock.Advance(contactRetryBase)
	gp.tn.retryContactDecisions(context.Background())
	for _, id := range []string{kept, lost} {
		if got, err := csc.tn.contacts.Get(id); err != nil || got.State != "answered" || got.Contact != "Duty desk gp" {
			t.Fatalf("requester %s: %v %+v", id, err, got)
		}
	}
	if l := listContacts(t, gp.tn, "op-token"); l.Received[0].Delivery != "delivered" || l.Received[1].Delivery != "delivered" {
		t.Fatalf("holder after the push: %+v", l.Received)
	}
	// Three answers received: two in the replies, one by the push that
	// found the second still new; the push of the first was a repeat.
	if got := actions(csc.aud, "contact-answer-received"); len(got) != 3 {
		t.Errorf("requester audit %q", got)
	}
}

// TestContactPeerRate: a node that floods another with contact requests
// is refused past the user rate's burst, per requesting node (each request
// is stored and shown to staff), and the requester's practitioner is told
// to slow down (429), not that the holder failed.
func TestContactPeerRate(t *testing.T) {
	_, csc, gp := contactPair(t)
	gp.tn.limiter = newLimiter(0.001, 3, gp.clock.Now) // the holder's: a burst of 3
	for i := range 4 {
		r := csc.tn.do(t, "POST", "/v1/contact-requests", "prac-token", `{"nodeId":"gp","purpose":"safeguarding","nhsNumber":"9990000018"}`)
		want := 200
		if i == 3 {
			want = 429
		}
		if r.status != want || want == 429 && (r.errCode() != "rate_limited" || !strings.Contains(r.body, "from this node")) {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if l := listContacts(t, gp.tn, "op-token"); len(l.Received) != 3 {
		t.Fatalf("stored %d", len(l.Received))
	}
	if l := listContacts(t, csc.tn, "prac-token"); len(l.Sent) != 3 {
		t.Fatalf("the refused request is kept at the requester: %d", len(l.Sent))
	}
}

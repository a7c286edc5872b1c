package node

import (
	"encoding/json"
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
			ns := wasmNodes(t, map[string][]string{"csc": {"safeguarding"}, "gp": {"safeguarding"}}, "csc")
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
			var nt notice
			if err := conn.ReadJSON(&nt); err != nil || nt.Type != "contact-request" || nt.Contact == nil || nt.Contact.LocalID != "g1" || nt.Contact.FromNode != "csc" {
				t.Fatalf("staff notice: %v %+v", err, nt)
			}
			r = ns["gp"].do(t, "GET", "/v1/contact-requests", "op-token", "")
			if !strings.Contains(r.body, `"localId":"g1"`) || !strings.Contains(r.body, `"status":"`+want+`"`) {
				t.Fatalf("received list: %s", r.body)
			}
			// Nobody at the holder under that key: 404 from the holder → 502 here.
			r = ns["csc"].do(t, "POST", "/v1/contact-requests", "prac-token", `{"nodeId":"gp","purpose":"safeguarding","nhsNumber":"9990000026"}`)
			if r.status != 502 {
				t.Fatalf("no record at holder: %d %s", r.status, r.body)
			}
		})
	}
}

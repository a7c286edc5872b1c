package node

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/signpost-federation/signpost/locator"
)

// TestWatchersToldOfWithdrawal: a practitioner at the GP watches a person
// whom the council's social care holds; when the council deletes the
// record, or the person objects, the watcher gets a "withdrawn" notice
// under the watched key carrying the holder's tombstone — and a second
// watcher of the same key gets it too.
func TestWatchersToldOfWithdrawal(t *testing.T) {
	for _, tc := range []struct{ name, method, suffix, nhs string }{
		{"delete", "DELETE", "", nhsA},
		{"objection", "POST", "/objection", nhsB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := locatorNodes(t, "csc", "gp")
			csc, gp := ns["csc"], ns["gp"]
			if r := csc.do(t, "POST", "/v1/records", "op-token", `{"localId":"k1","nhsNumber":"`+tc.nhs+`"}`); r.status != 201 {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			r := gp.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"`+tc.nhs+`","purpose":"safeguarding"}`)
			var res LocateResult
			if err := json.Unmarshal([]byte(r.body), &res); err != nil || len(res.Holders) != 1 {
				t.Fatalf("locate: %d %s", r.status, r.body)
			}
			watchers := []*websocket.Conn{watchKey(t, gp, res.LookupKey), watchKey(t, gp, res.LookupKey)}
			if r := csc.do(t, tc.method, "/v1/records/k1"+tc.suffix, "op-token", ""); r.status != 204 {
				t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
			}
			for i, conn := range watchers {
				var nt Notice
				if err := conn.ReadJSON(&nt); err != nil {
					t.Fatalf("watcher %d: %v", i, err)
				}
				if nt.Type != "withdrawn" || nt.LookupKey != res.LookupKey {
					t.Fatalf("watcher %d: %+v", i, nt)
				}
				raw, err := base64.StdEncoding.DecodeString(nt.Entry)
				if err != nil {
					t.Fatal(err)
				}
				e, err := locator.DecodeEntry(raw)
				if err != nil || !e.Deleted {
					t.Fatalf("watcher %d: the notice's entry is not a tombstone: %v", i, err)
				}
			}
		})
	}
}

// watchKey opens a practitioner's watch on n for key and waits for the
// acknowledgement.
func watchKey(t *testing.T, n *testNode, key string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.srv.URL, "http")+"/v1/watch",
		http.Header{"Authorization": {"Bearer prac-token"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	conn.WriteJSON(map[string]string{"watch": key})
	var nt Notice
	if err := conn.ReadJSON(&nt); err != nil || nt.Type != "watching" {
		t.Fatalf("watch ack: %v %+v", err, nt)
	}
	return conn
}

// TestWatchOrigin: the watch applies the node's one Origin rule
// (auth.OriginAllowed with Config.AllowedOrigins, as for cookie writes):
// no Origin and a listed one open the watch; another site, or with a list
// even the page's own host, is refused 403 origin_forbidden in the API's
// error shape, like every other origin refusal.
func TestWatchOrigin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed []string
		origin  string // "self": the test server's own origin
		want    int
	}{
		{"no origin", nil, "", http.StatusSwitchingProtocols},
		{"same host", nil, "self", http.StatusSwitchingProtocols},
		{"other site", nil, "https://elsewhere.example", http.StatusForbidden},
		{"listed", []string{"https://page.example"}, "https://page.example", http.StatusSwitchingProtocols},
		{"same host, not listed", []string{"https://page.example"}, "self", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestNode(t, newFakeFed(), "a", func(c *Config) { c.AllowedOrigins = tc.allowed })
			h := http.Header{"Authorization": {"Bearer prac-token"}}
			switch tc.origin {
			case "self":
				h.Set("Origin", a.srv.URL)
			case "":
			default:
				h.Set("Origin", tc.origin)
			}
			conn, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(a.srv.URL, "http")+"/v1/watch", h)
			if conn != nil {
				conn.Close()
			}
			if res == nil {
				t.Fatalf("no answer: %v", err)
			}
			defer res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			if tc.want == http.StatusForbidden {
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.NewDecoder(res.Body).Decode(&e); err != nil || e.Error.Code != "origin_forbidden" || e.Error.Message == "" {
					t.Fatalf("refusal %+v (%v)", e, err)
				}
			}
		})
	}
}

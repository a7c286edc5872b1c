package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// watchRig is a node whose practitioners keep stored watches (csc, on a
// data directory it can be restarted on, with an explicit clock) and a
// holder (gp) on the same fake federation.
type watchRig struct {
	fed   *fakeFed
	dir   string
	clock *testClock
	aud   *countingAudit
	mut   func(*Config)
	csc   *testNode
	gp    *testNode
	key   string // the lookup key of nhsA for safeguarding
}

func newWatchRig(t *testing.T, mut func(*Config)) *watchRig {
	t.Helper()
	r := &watchRig{fed: newFakeFed(), dir: t.TempDir(), clock: newTestClock(), aud: &countingAudit{}, mut: mut}
	r.gp = newTestNode(t, r.fed, "gp", nil)
	r.start(t)
	res := r.csc.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"`+nhsA+`","purpose":"safeguarding"}`)
	var lr LocateResult
	if err := json.Unmarshal([]byte(res.body), &lr); err != nil || lr.LookupKey == "" {
		t.Fatalf("locate: %d %s", res.status, res.body)
	}
	r.key = lr.LookupKey
	return r
}

// start (re)starts csc on its data directory, as a restart would.
func (r *watchRig) start(t *testing.T) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir = "csc", "Agency csc", "school", r.dir
	cfg.Purposes = []string{"safeguarding"}
	if r.mut != nil {
		r.mut(&cfg)
	}
	n, err := New(cfg, Options{Tokenizer: &fakeTokenizer{}, Index: r.fed.index("csc", "Agency csc"), Keyring: soloKeyring("csc"),
		Auth: contactTokens, Audit: r.aud, Now: r.clock.Now, Logger: slog.New(slog.NewTextHandler(testLogs, nil))})
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
	r.csc = &testNode{Node: n, srv: srv}
}

func (r *watchRig) stop(t *testing.T) {
	t.Helper()
	r.csc.srv.Close()
	if err := r.csc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (r *watchRig) list(t *testing.T, token string) []WatchView {
	t.Helper()
	res := r.csc.do(t, "GET", "/v1/watches", token, "")
	var out struct{ Watches []WatchView }
	if err := json.Unmarshal([]byte(res.body), &out); err != nil || res.status != 200 {
		t.Fatalf("list: %d %s", res.status, res.body)
	}
	return out.Watches
}

func (r *watchRig) create(t *testing.T, token string, keys ...string) (WatchView, resp) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"purpose": "safeguarding", "lookupKeys": keys})
	res := r.csc.do(t, "POST", "/v1/watches", token, string(b))
	var v WatchView
	json.Unmarshal([]byte(res.body), &v)
	return v, res
}

func (r *watchRig) actions() []string {
	var out []string
	for _, e := range r.aud.all() {
		if strings.HasPrefix(e.Action, "watch-") {
			out = append(out, e.Action+" "+e.Actor)
		}
	}
	return out
}

// otherKey is a lookup key no number gave (base64url of 16 bytes).
func otherKey(b byte) string { return encodeKey([16]byte{b, 7, 7}) }

// TestStoredWatchLifecycle: a practitioner starts a stored watch; another
// practitioner can neither see nor stop it; a new record for the person at
// another agency is stored as a notice with its time while no page is
// open; the watch and its notice survive a restart of the node, after
// which a withdrawal is both stored and sent live, with its watch id and
// time, to the user's socket; the user marks notices seen and stops the
// watch, after which nothing more is stored. Each step is audited.
func TestStoredWatchLifecycle(t *testing.T) {
	r := newWatchRig(t, nil)
	v, res := r.create(t, "prac-token", r.key)
	if res.status != 201 || v.ID == "" || v.Keys != 1 || !v.Started.Equal(r.clock.Now()) || !v.Expires.Equal(r.clock.Now().Add(90*24*time.Hour)) {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	if got := r.list(t, "prac2-token"); len(got) != 0 {
		t.Fatalf("another practitioner sees %+v", got)
	}
	for _, c := range []struct{ method, path, body string }{
		{"DELETE", "/v1/watches/" + v.ID, ""},
		{"POST", "/v1/watches/" + v.ID + "/seen", `{"seq":1}`},
		{"DELETE", "/v1/watches/not-an-id", ""},
	} {
		if res := r.csc.do(t, c.method, c.path, "prac2-token", c.body); res.status != 404 || res.errCode() != "watch_not_found" {
			t.Fatalf("%s %s by another practitioner: %d %s", c.method, c.path, res.status, res.body)
		}
	}

	// No page is open: the new involvement is stored, with its time.
	r.clock.Advance(time.Hour)
	if res := r.gp.do(t, "POST", "/v1/records", "op-token", `{"localId":"g1","nhsNumber":"`+nhsA+`"}`); res.status != 201 {
		t.Fatalf("gp create: %d %s", res.status, res.body)
	}
	ws := r.list(t, "prac-token")
	if len(ws) != 1 || len(ws[0].Notices) != 1 || ws[0].Notices[0].Type != "involved" || !ws[0].Notices[0].At.Equal(r.clock.Now()) || ws[0].Notices[0].Entry == "" || ws[0].Unseen != 1 {
		t.Fatalf("after the gp's record: %+v", ws)
	}

	// The node restarts: the watch and its notice are still there, and the
	// watch still works.
	r.stop(t)
	r.start(t)
	ws = r.list(t, "prac-token")
	if len(ws) != 1 || ws[0].ID != v.ID || len(ws[0].Notices) != 1 {
		t.Fatalf("after the restart: %+v", ws)
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(r.csc.srv.URL, "http")+"/v1/watch", http.Header{"Authorization": {"Bearer prac-token"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The socket is registered before the handshake is answered.
	r.clock.Advance(time.Minute)
	if res := r.gp.do(t, "DELETE", "/v1/records/g1", "op-token", ""); res.status != 204 {
		t.Fatalf("gp delete: %d %s", res.status, res.body)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var nt Notice
	if err := conn.ReadJSON(&nt); err != nil || nt.Type != "withdrawn" || nt.WatchID != v.ID || nt.Seq != 2 || nt.At == nil || !nt.At.Equal(r.clock.Now()) || nt.LookupKey != r.key {
		t.Fatalf("live notice %+v %v", nt, err)
	}
	ws = r.list(t, "prac-token")
	if len(ws[0].Notices) != 2 || ws[0].Notices[1].Type != "withdrawn" || ws[0].Unseen != 2 {
		t.Fatalf("stored notices %+v", ws[0].Notices)
	}

	if res := r.csc.do(t, "POST", "/v1/watches/"+v.ID+"/seen", "prac-token", `{"seq":1}`); res.status != 204 {
		t.Fatalf("seen: %d %s", res.status, res.body)
	}
	ws = r.list(t, "prac-token")
	if !ws[0].Notices[0].Seen || ws[0].Notices[1].Seen || ws[0].Unseen != 1 {
		t.Fatalf("after marking seen: %+v", ws[0])
	}

	if res := r.csc.do(t, "DELETE", "/v1/watches/"+v.ID, "prac-token", ""); res.status != 204 {
		t.Fatalf("stop: %d %s", res.status, res.body)
	}
	if got := r.list(t, "prac-token"); len(got) != 0 {
		t.Fatalf("after stopping: %+v", got)
	}
	if res := r.gp.do(t, "POST", "/v1/records", "op-token", `{"localId":"g2","nhsNumber":"`+nhsA+`"}`); res.status != 201 {
		t.Fatalf("gp create: %d %s", res.status, res.body)
	}
	if n, err := r.csc.watches.Notices(v.ID); err != nil || len(n) != 0 {
		t.Fatalf("notices stored for a stopped watch: %+v %v", n, err)
	}
	if res := r.csc.do(t, "DELETE", "/v1/watches/"+v.ID, "prac-token", ""); res.status != 404 {
		t.Fatalf("stopping twice: %d %s", res.status, res.body)
	}
	if got, want := r.actions(), []string{"watch-start prac", "watch-seen prac", "watch-stop prac"}; !slices.Equal(got, want) {
		t.Errorf("audited %q, want %q", got, want)
	}
	notified := 0
	for _, e := range r.aud.all() {
		if e.Action == "notify" && e.Actor == "prac" {
			notified++
		}
	}
	if notified != 2 {
		t.Errorf("%d notify lines, want 2", notified)
	}
}

// TestStoredWatchExpiry: the sweep, on the node's clock, deletes a watch
// at its expiry (Config.WatchExpiry) with its notices and audits it; a
// change under its key is no longer stored.
func TestStoredWatchExpiry(t *testing.T) {
	r := newWatchRig(t, func(c *Config) { c.WatchExpiry = DurationOf(2 * time.Hour) })
	v, res := r.create(t, "prac-token", r.key)
	if res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	r.clock.Advance(2*time.Hour - time.Second)
	if n, err := r.csc.sweepWatches(context.Background()); n != 0 || err != nil {
		t.Fatalf("swept %d (%v) before the expiry", n, err)
	}
	r.clock.Advance(time.Second)
	if n, err := r.csc.sweepWatches(context.Background()); n != 1 || err != nil {
		t.Fatalf("swept %d (%v) at the expiry", n, err)
	}
	if got := r.list(t, "prac-token"); len(got) != 0 {
		t.Fatalf("after the expiry: %+v", got)
	}
	if res := r.gp.do(t, "POST", "/v1/records", "op-token", `{"localId":"g1","nhsNumber":"`+nhsA+`"}`); res.status != 201 {
		t.Fatalf("gp create: %d %s", res.status, res.body)
	}
	if n, _ := r.csc.watches.Notices(v.ID); len(n) != 0 {
		t.Fatalf("a notice stored for an expired watch: %+v", n)
	}
	if got, want := r.actions(), []string{"watch-start prac", "watch-expire node:csc"}; !slices.Equal(got, want) {
		t.Errorf("audited %q, want %q", got, want)
	}
}

// TestStoredWatchRenewAndExtend: starting a watch again with a key of one
// the user keeps for that purpose renews it and adds the new keys (a
// search during a key rotation gives the new key): 200, the same id.
func TestStoredWatchRenewAndExtend(t *testing.T) {
	r := newWatchRig(t, nil)
	v, _ := r.create(t, "prac-token", r.key)
	r.clock.Advance(24 * time.Hour)
	again, res := r.create(t, "prac-token", otherKey(1), r.key)
	if res.status != 200 || again.ID != v.ID || again.Keys != 2 || !again.Expires.Equal(r.clock.Now().Add(90*24*time.Hour)) || !again.Started.Equal(v.Started) {
		t.Fatalf("again: %d %s", res.status, res.body)
	}
	if got := r.list(t, "prac-token"); len(got) != 1 {
		t.Fatalf("%d watches, want 1", len(got))
	}
}

// TestStoredWatchRefusals: a bad body, a key that is not one, too many
// keys, a purpose the node lacks, a role that may not watch, and a
// practitioner over watches_per_user are each refused with a clear error
// and store nothing.
func TestStoredWatchRefusals(t *testing.T) {
	r := newWatchRig(t, func(c *Config) { c.WatchesPerUser = 2 })
	for _, k := range []string{otherKey(1), otherKey(2)} {
		if _, res := r.create(t, "prac2-token", k); res.status != 201 {
			t.Fatalf("prac2's watch: %d %s", res.status, res.body)
		}
	}
	many := make([]string, MaxWatchKeys+1)
	for i := range many {
		many[i] = otherKey(byte(i))
	}
	manyBody, _ := json.Marshal(map[string]any{"purpose": "safeguarding", "lookupKeys": many})
	for _, tc := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"not JSON", "prac-token", `{"purpose":`, 400, "bad_request"},
		{"an unknown field", "prac-token", `{"purpose":"safeguarding","lookupKeys":["` + otherKey(1) + `"],"nhsNumber":"x"}`, 400, "bad_request"},
		{"no keys", "prac-token", `{"purpose":"safeguarding","lookupKeys":[]}`, 400, "bad_request"},
		{"not a key", "prac-token", `{"purpose":"safeguarding","lookupKeys":["AAAA"]}`, 400, "invalid_lookup_key"},
		{"too many keys", "prac-token", string(manyBody), 400, "too_many_keys"},
		{"another purpose", "prac-token", `{"purpose":"direct-care","lookupKeys":["` + otherKey(1) + `"]}`, 403, "purpose_not_authorised"},
		{"an operator", "op-token", `{"purpose":"safeguarding","lookupKeys":["` + otherKey(1) + `"]}`, 403, "forbidden"},
		{"over the cap", "prac2-token", `{"purpose":"safeguarding","lookupKeys":["` + otherKey(3) + `"]}`, 429, "too_many_watches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.csc.do(t, "POST", "/v1/watches", tc.token, tc.body)
			if res.status != tc.status || res.errCode() != tc.code {
				t.Fatalf("%d %s, want %d %s", res.status, res.body, tc.status, tc.code)
			}
			all, err := r.csc.watches.All()
			if err != nil || len(all) != 2 {
				t.Fatalf("the store holds %d watches (%v), want prac2's 2", len(all), err)
			}
		})
	}
	if got := r.actions(); len(got) != 2 {
		t.Errorf("audited %q: a refusal is not audited as a start", got)
	}
}

// TestWatchExpiryConfig: watch_expiry defaults to 90 days and must be from
// an hour to 366 days; watches_per_user must be positive.
func TestWatchExpiryConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mut     func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"a day", func(c *Config) { c.WatchExpiry = DurationOf(24 * time.Hour) }, ""},
		{"too short", func(c *Config) { c.WatchExpiry = DurationOf(30 * time.Minute) }, "watch_expiry"},
		{"too long", func(c *Config) { c.WatchExpiry = DurationOf(400 * 24 * time.Hour) }, "watch_expiry"},
		{"negative cap", func(c *Config) { c.WatchesPerUser = -1 }, "watches_per_user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.NodeID, cfg.Category, cfg.DataDir = "n", "school", t.TempDir()
			tc.mut(&cfg)
			got, err := cfg.WithDefaults()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.name == "default" && got.WatchExpiry.D() != 90*24*time.Hour {
					t.Errorf("default watch_expiry %v", got.WatchExpiry.D())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

// TestStoredWatchRoutesCharged: starting watches and marking notices seen
// (each an audit line) spend the user's rate (user_burst 2 on a stopped
// clock): the third of each is 429 rate_limited, stores and audits nothing.
func TestStoredWatchRoutesCharged(t *testing.T) {
	r := newWatchRig(t, func(c *Config) { c.UserRate, c.UserBurst = 1, 2 })
	// The rig's locate spent one of the two: one start is left.
	v, res := r.create(t, "prac-token", otherKey(1))
	if res.status != 201 {
		t.Fatalf("first start: %d %s", res.status, res.body)
	}
	if _, res := r.create(t, "prac-token", otherKey(2)); res.status != 429 || res.errCode() != "rate_limited" {
		t.Fatalf("start over the rate: %d %s", res.status, res.body)
	}
	if res := r.csc.do(t, "POST", "/v1/watches/"+v.ID+"/seen", "prac-token", `{"seq":0}`); res.status != 429 {
		t.Fatalf("seen over the rate: %d %s", res.status, res.body)
	}
	if all, _ := r.csc.watches.All(); len(all) != 1 {
		t.Fatalf("%d watches stored, want 1", len(all))
	}
	if got := r.actions(); !slices.Equal(got, []string{"watch-start prac"}) {
		t.Errorf("audited %q", got)
	}
}

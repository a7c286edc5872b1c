package node

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// testKey is the i-th synthetic lookup key, base64url.
func testKey(i int) string {
	var k [16]byte
	binary.BigEndian.PutUint64(k[8:], uint64(i)+1)
	return base64.RawURLEncoding.EncodeToString(k[:])
}

// openWatch opens a watch on n with token and the query keys; it returns
// the connection, or the refusal's status and error code.
func openWatch(t *testing.T, n *testNode, token string, keys ...string) (*websocket.Conn, int, string) {
	t.Helper()
	q := url.Values{"lookupKey": keys}
	conn, res, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.srv.URL, "http")+"/v1/watch?"+q.Encode(),
		http.Header{"Authorization": {"Bearer " + token}})
	if err == nil {
		t.Cleanup(func() { conn.Close() })
		return conn, res.StatusCode, ""
	}
	if res == nil {
		t.Fatalf("watch: %v", err)
	}
	defer res.Body.Close()
	r := resp{status: res.StatusCode}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		m, rerr := res.Body.Read(buf)
		b.Write(buf[:m])
		if rerr != nil {
			break
		}
	}
	r.body = b.String()
	if !isErrorShape(r.body) {
		t.Fatalf("refusal not in the JSON error shape: %d %q", r.status, r.body)
	}
	return nil, r.status, r.errCode()
}

// TestWatchAbuse: a handshake is one audit line naming its count; more
// than MaxWatchKeys keys, or more watches than a user's or the node's cap,
// are refused with a JSON error before anything is written or audited; a
// connection cannot audit a key twice nor watch more than MaxWatchKeys in
// its life; /healthz answers throughout.
func TestWatchAbuse(t *testing.T) {
	aud := &countingAudit{}
	users := StaticTokens{}
	for _, u := range []string{"p1", "p2", "p3"} {
		users[u+"-token"] = Principal{Name: u, Role: RolePractitioner}
	}
	a := newTestNodeWith(t, newFakeFed(), "a", func(c *Config) { c.WatchersPerUser, c.WatchersPerNode = 3, 5 },
		func(o *Options) { o.Audit, o.Auth = aud, users })
	healthy := func(step string) {
		t.Helper()
		if r := a.do(t, "GET", "/healthz", "", ""); r.status != 200 {
			t.Fatalf("%s: /healthz %d", step, r.status)
		}
	}
	// The handshake's audit line is written once the 101 is sent: wait.
	lines := func(want int) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() error {
			if n := len(aud.all()); n != want {
				return fmt.Errorf("%d audit lines, want %d", n, want)
			}
			return nil
		})
	}
	keys := make([]string, MaxWatchKeys+1)
	for i := range keys {
		keys[i] = testKey(i)
	}

	// 65 keys: refused, nothing audited, no watcher.
	if _, status, code := openWatch(t, a, "p1-token", keys...); status != 400 || code != "too_many_keys" {
		t.Fatalf("65 keys: %d %s", status, code)
	}
	if _, status, code := openWatch(t, a, "p1-token", "short"); status != 400 || code != "invalid_lookup_key" {
		t.Fatalf("a bad key: %d %s", status, code)
	}
	if n := len(aud.all()); n != 0 || a.hub.count() != 0 {
		t.Fatalf("refused handshakes: %d audit lines, %d watchers", n, a.hub.count())
	}
	healthy("after refusals")

	// 64 keys (and a repeat, which is the same key): one line, count 64.
	conn, status, _ := openWatch(t, a, "p1-token", append(keys[:MaxWatchKeys:MaxWatchKeys], keys[0])...)
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("64 keys: %d", status)
	}
	lines(1)
	evs := aud.all()
	if len(evs) != 1 || evs[0].Action != "watch" || evs[0].Count != MaxWatchKeys || len(evs[0].Subject) != MaxWatchKeys || evs[0].Actor != "p1" {
		t.Fatalf("handshake audit: %d lines, first %+v", len(evs), evs[0])
	}
	// That connection is full: one more key is refused, and watching and
	// unwatching a key it has in a loop writes no line.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	conn.WriteJSON(map[string]string{"watch": keys[MaxWatchKeys]})
	var nt Notice
	if err := conn.ReadJSON(&nt); err != nil || nt.Type != "error" {
		t.Fatalf("65th key: %v %+v", err, nt)
	}
	for range 50 {
		conn.WriteJSON(map[string]string{"unwatch": keys[1]})
		conn.WriteJSON(map[string]string{"watch": keys[1]})
		if err := conn.ReadJSON(&nt); err != nil || nt.Type != "watching" {
			t.Fatalf("re-watch: %v %+v", err, nt)
		}
	}
	if n := len(aud.all()); n != 1 {
		t.Fatalf("watch/unwatch loop: %d audit lines, want 1", n)
	}
	healthy("after the loop")

	// A fresh connection watching keys one by one: a line per new key.
	c2, _, _ := openWatch(t, a, "p1-token")
	lines(2)
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 3 {
		c2.WriteJSON(map[string]string{"watch": keys[i]})
		if err := c2.ReadJSON(&nt); err != nil || nt.Type != "watching" {
			t.Fatalf("watch %d: %v %+v", i, err, nt)
		}
	}
	if evs := aud.all(); len(evs) != 5 || evs[1].Count != 0 || evs[4].Count != 1 {
		t.Fatalf("second connection: %+v", evs)
	}

	// Per user: p1 has 2; a third is allowed, a fourth refused.
	openWatch(t, a, "p1-token")
	lines(6)
	if _, status, code := openWatch(t, a, "p1-token", keys[0]); status != 429 || code != "too_many_watches" {
		t.Fatalf("user cap: %d %s", status, code)
	}
	// Per node: p2 takes the last two of 5; p3 is refused.
	openWatch(t, a, "p2-token")
	openWatch(t, a, "p2-token")
	lines(8)
	if _, status, code := openWatch(t, a, "p3-token", keys[0]); status != 503 || code != "too_many_watches" {
		t.Fatalf("node cap: %d %s", status, code)
	}
	if n := len(aud.all()); n != 8 {
		t.Fatalf("refused watches were audited: %d lines, want 8", n)
	}
	healthy("at the caps")

	// Closing one frees its slot.
	conn.Close()
	watchers(t, a, 4)
	if _, status, _ := openWatch(t, a, "p3-token"); status != http.StatusSwitchingProtocols {
		t.Fatalf("after a close: %d", status)
	}
	healthy("at the end")
}

// TestWatchIdleAndLifetime: on the node's clock, a watch with no message
// either way for WatchIdle is closed (a client that only answers pings is
// idle), and one kept busy is closed at WatchLifetime; the close frame
// says why.
func TestWatchIdleAndLifetime(t *testing.T) {
	clock := newTestClock()
	a := newTestNodeWith(t, newFakeFed(), "a", func(c *Config) {
		c.WatchIdle, c.WatchLifetime = DurationOf(10*time.Minute), DurationOf(time.Hour)
	}, func(o *Options) { o.Now = clock.Now })
	a.hub.checkEvery = 2 * time.Millisecond
	closedWith := func(conn *websocket.Conn) string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var nt Notice
		err := conn.ReadJSON(&nt)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("not closed: %v %+v", err, nt)
		}
		return ce.Text
	}
	ping := func(conn *websocket.Conn) { // activity: a message and its answer
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		conn.WriteJSON(map[string]string{"watch": testKey(0)})
		var nt Notice
		if err := conn.ReadJSON(&nt); err != nil || nt.Type != "watching" {
			t.Fatalf("watch: %v %+v", err, nt)
		}
	}

	conn, _, _ := openWatch(t, a, "prac-token")
	for range 3 { // 3 × 9 minutes with a message each time: not idle
		clock.Advance(9 * time.Minute)
		ping(conn)
	}
	clock.Advance(10 * time.Minute)
	if why := closedWith(conn); !strings.Contains(why, "idle") {
		t.Fatalf("idle close: %q", why)
	}

	conn, _, _ = openWatch(t, a, "prac-token")
	for range 6 { // 54 minutes, busy
		clock.Advance(9 * time.Minute)
		ping(conn)
	}
	clock.Advance(6 * time.Minute)
	if why := closedWith(conn); !strings.Contains(why, "lifetime") {
		t.Fatalf("lifetime close: %q", why)
	}
	watchers(t, a, 0)
}

// watchers waits until n counts want open watches.
func watchers(t *testing.T, n *testNode, want int) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := n.hub.count(); got != want {
			return fmt.Errorf("%d watches open, want %d", got, want)
		}
		return nil
	})
}

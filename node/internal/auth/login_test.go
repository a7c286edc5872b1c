package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// signIn posts a sign-in to a's handler as if from remote (host:port),
// with X-Forwarded-For xff if not empty, and returns the status, the error
// code and message, and Retry-After.
func signIn(t *testing.T, a *Authenticator, remote, xff, user, password string) (int, httpx.Code, string, string) {
	t.Helper()
	body, _ := json.Marshal(LoginRequest{Username: user, Password: password})
	r := httptest.NewRequest("POST", "/v1/session", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = remote
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	w := httptest.NewRecorder()
	a.SessionHandler().ServeHTTP(w, r)
	var e struct {
		Error struct {
			Code    httpx.Code `json:"code"`
			Message string     `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal(w.Body.Bytes(), &e)
	return w.Code, e.Error.Code, e.Error.Message, w.Header().Get("Retry-After")
}

// TestLockoutCannotBeTurnedAgainstTheUser is the attack: one
// address sends wrong passwords for alice (and ola) every 5 seconds, for
// hours. Before, sign-in was limited per username, so alice's right
// password from her own desk got 429 for as long as the attack went on.
// Now the attacker's address backs off and alice, elsewhere, always gets in
// — directly, and behind a trusted proxy where only X-Forwarded-For tells
// the two apart.
func TestLockoutCannotBeTurnedAgainstTheUser(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		trusted              []netip.Prefix
		attacker, user       string // RemoteAddr
		attackerXFF, userXFF string
	}{
		{name: "direct", attacker: "192.0.2.66:40000", user: "198.51.100.7:50000"},
		{name: "behind a trusted proxy", trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			attacker: "10.0.0.2:40000", attackerXFF: "192.0.2.66", user: "10.0.0.2:40001", userXFF: "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.TrustedProxies = tc.trusted })
			refused := 0
			for i := range 2000 { // 2000 × 5 s: nearly three hours
				for _, victim := range []string{"alice", "ola"} {
					code, _, _, _ := signIn(t, f.a, tc.attacker, tc.attackerXFF, victim, "wrong password "+strconv.Itoa(i))
					switch code {
					case http.StatusUnauthorized:
					case http.StatusTooManyRequests:
						refused++
					default:
						t.Fatalf("attack %d: %d", i, code)
					}
				}
				if i%100 == 0 {
					if code, c, _, _ := signIn(t, f.a, tc.user, tc.userXFF, "alice", alicePassword); code != http.StatusOK {
						t.Fatalf("after %d attacks alice's right password from her own address got %d %s", i, code, c)
					}
					if i%200 == 0 { // a typo first costs her nothing either
						if code, _, _, _ := signIn(t, f.a, tc.user, tc.userXFF, "ola", "typo"); code != http.StatusUnauthorized {
							t.Fatalf("ola's typo: %d", code)
						}
					}
					if code, c, _, _ := signIn(t, f.a, tc.user, tc.userXFF, "ola", olaPassword); code != http.StatusOK {
						t.Fatalf("after %d attacks ola's right password got %d %s", i, code, c)
					}
				}
				f.clock.Advance(5 * time.Second)
			}
			if refused < 3900 {
				t.Errorf("the attacker was refused %d of 4000 times: the back-off did not hold them", refused)
			}
		})
	}
}

// TestBackoffOnTheFailingPairOnly: after LoginFreeFailures failures a
// (username, address) pair waits LoginBackoff, doubling with each further
// failure up to LoginBackoffMax, and the 429 says how long; another
// username from that address, and a success after the wait, are unaffected.
func TestBackoffOnTheFailingPairOnly(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.LoginRate, c.LoginBurst = 100, 100 // the per-address bucket out of the way
		c.LoginFreeFailures, c.LoginBackoff, c.LoginBackoffMax = 3, 2*time.Second, 30*time.Second
	})
	const from = "192.0.2.66:1"
	for i := range 3 {
		if code, _, _, _ := signIn(t, f.a, from, "", "alice", "wrong"); code != 401 {
			t.Fatalf("free failure %d: %d", i, code)
		}
	}
	for _, want := range []int{2, 4, 8, 16, 30, 30} {
		if code, _, _, _ := signIn(t, f.a, from, "", "alice", "wrong"); code != 401 {
			t.Fatalf("failure before a %ds wait: %d", want, code)
		}
		code, c, msg, retry := signIn(t, f.a, from, "", "alice", alicePassword)
		if code != 429 || c != httpx.CodeRateLimited || retry != strconv.Itoa(want) {
			t.Fatalf("during the back-off: %d %s Retry-After %q, want 429 rate_limited %d", code, c, retry, want)
		}
		if wantMsg := "try again in " + strconv.Itoa(want) + " seconds"; !strings.Contains(msg, wantMsg) {
			t.Errorf("message %q does not say %q", msg, wantMsg)
		}
		if code, _, _, _ := signIn(t, f.a, from, "", "ola", olaPassword); code != 200 {
			t.Fatalf("another user from the same address: %d", code)
		}
		f.clock.Advance(time.Duration(want)*time.Second - time.Millisecond)
		if code, _, _, _ := signIn(t, f.a, from, "", "alice", alicePassword); code != 429 {
			t.Fatalf("1 ms before the wait ends: %d", code)
		}
		f.clock.Advance(time.Millisecond)
	}
	if code, _, _, _ := signIn(t, f.a, from, "", "alice", alicePassword); code != 200 {
		t.Fatalf("right password after the wait: %d", code)
	}
	// The success ended the back-off: three free failures again.
	for i := range 3 {
		if code, _, _, _ := signIn(t, f.a, from, "", "alice", "wrong"); code != 401 {
			t.Fatalf("after success, failure %d: %d", i, code)
		}
	}
}

// TestFailingPairOneGuessAtATime: a pair that has failed may not have
// several guesses checked at once (they would all pass the back-off check
// before the first failure counted).
func TestFailingPairOneGuessAtATime(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LoginRate, c.LoginBurst = 1000, 1000 })
	g := f.a.login
	if ok, _ := g.begin("alice", "192.0.2.1"); !ok {
		t.Fatal("first attempt refused")
	}
	g.done("alice", "192.0.2.1", false)
	if ok, _ := g.begin("alice", "192.0.2.1"); !ok {
		t.Fatal("second attempt refused")
	}
	if ok, wait := g.begin("alice", "192.0.2.1"); ok || wait <= 0 {
		t.Fatalf("a concurrent guess of a failing pair: ok %v wait %v", ok, wait)
	}
	if ok, _ := g.begin("alice", "198.51.100.7"); !ok {
		t.Fatal("the same user from another address waited for the first")
	}
}

// TestSuccessCostsTheAddressNothing: an office behind one address signs in
// all morning without a 429; only failures spend its allowance.
func TestSuccessCostsTheAddressNothing(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LoginRate, c.LoginBurst = 1.0/60, 3 })
	for i := range 50 {
		if code, _, _, _ := signIn(t, f.a, "192.0.2.1:1", "", "alice", alicePassword); code != 200 {
			t.Fatalf("sign-in %d: %d", i, code)
		}
	}
	for range 3 {
		signIn(t, f.a, "192.0.2.1:1", "", "mallory", "guess")
	}
	if code, _, _, _ := signIn(t, f.a, "192.0.2.1:1", "", "ola", olaPassword); code != 429 {
		t.Fatalf("after the address's failures used its burst: %d, want 429", code)
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"192.0.2.1:5", nil, nil, "192.0.2.1"},
		{"192.0.2.1:5", []string{"203.0.113.9"}, nil, "192.0.2.1"},                           // no proxy trusted: header ignored
		{"192.0.2.1:5", []string{"203.0.113.9"}, trusted, "192.0.2.1"},                       // not from a trusted proxy
		{"10.0.0.2:5", []string{"203.0.113.9"}, trusted, "203.0.113.9"},                      // from the proxy
		{"10.0.0.2:5", nil, trusted, "10.0.0.2"},                                             // proxy without header
		{"10.0.0.2:5", []string{"1.2.3.4, 203.0.113.9"}, trusted, "203.0.113.9"},             // forged left entry
		{"10.0.0.2:5", []string{"1.2.3.4", "203.0.113.9, 10.0.0.3"}, trusted, "203.0.113.9"}, // two proxies, two headers
		{"10.0.0.2:5", []string{"10.0.0.4, 10.0.0.3"}, trusted, "10.0.0.4"},                  // all trusted: the leftmost
		{"10.0.0.2:5", []string{"203.0.113.9, bogus"}, trusted, "10.0.0.2"},                  // malformed: stop
		{"[::1]:5", []string{"2001:db8:1:2:3:4:5:6"}, trusted, "2001:db8:1:2::/64"},          // IPv6 by /64
		{"[::ffff:192.0.2.1]:5", nil, nil, "192.0.2.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ClientAddr(r, tc.trusted); got != tc.want {
			t.Errorf("%s %q trusted=%v: %s, want %s", tc.remote, tc.xff, tc.trusted, got, tc.want)
		}
	}
}

// TestWrongUsernameCostsAWrongPassword: an unknown username is checked
// against a hash of the same cost as a known user's, so that timing does
// not tell which of the two was wrong.
func TestWrongUsernameCostsAWrongPassword(t *testing.T) {
	f := newFixture(t, nil)
	var mu sync.Mutex
	var calls []string
	orig := idKey
	idKey = func(pw, salt []byte, tm, mem uint32, th uint8, n uint32) []byte {
		mu.Lock()
		calls = append(calls, strconv.Itoa(int(tm))+"/"+strconv.Itoa(int(mem))+"/"+strconv.Itoa(int(th))+"/"+strconv.Itoa(int(n)))
		mu.Unlock()
		return orig(pw, salt, tm, mem, th, n)
	}
	t.Cleanup(func() { idKey = orig })
	work := func(user string) []string {
		calls = nil
		if _, err := f.a.Store().CheckPassword(user, []byte("wrong password")); err != ErrBadCredentials {
			t.Fatalf("%s: %v", user, err)
		}
		return calls
	}
	known, unknown := work("alice"), work("mallory")
	if len(known) != 1 || strings.Join(known, ",") != strings.Join(unknown, ",") {
		t.Errorf("argon2id work: known user %v, unknown user %v", known, unknown)
	}
}

// TestPairTableBounded: a failing pair's key keeps at most maxKeyUser
// bytes of the username, however long the name sent.
func TestPairTableBounded(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LoginRate, c.LoginBurst = 1000, 1000 })
	long := strings.Repeat("m", 4000)
	if code, _, _, _ := signIn(t, f.a, "192.0.2.1:1", "", long, "guess"); code != 401 {
		t.Fatalf("long name: %d", code)
	}
	f.a.login.mu.Lock()
	defer f.a.login.mu.Unlock()
	if len(f.a.login.pairs) != 1 {
		t.Fatalf("%d pairs", len(f.a.login.pairs))
	}
	for k := range f.a.login.pairs {
		if len(k.user) > maxKeyUser {
			t.Errorf("the table keeps %d bytes of name", len(k.user))
		}
	}
}

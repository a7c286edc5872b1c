package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// loginGuard limits sign-in attempts so that the limits cannot be turned
// against the user they protect. Nothing is keyed by the username alone
// (five wrong passwords from anywhere used to lock the user out
// everywhere):
//
//   - each client address has a token bucket (LoginRate, LoginBurst),
//     charged for every attempt before the password is checked and given
//     back when the attempt succeeds, so an office signing in together is
//     never slowed while a guesser at one address is;
//   - each (username, client address) pair may fail LoginFreeFailures
//     times; every further failure doubles a back-off (LoginBackoff,
//     2×LoginBackoff, … up to LoginBackoffMax) during which that pair —
//     and only that pair — is refused before any password is checked. A
//     success ends the pair's back-off.
//
// So failures at one address never refuse the right password from another.
// What is left — guessing one user's password from many addresses — costs
// each address its own back-off, and argon2id work is bounded by
// LoginConcurrency whatever the number of addresses.
type loginGuard struct {
	addr *Limiter

	free     int
	base     time.Duration
	max      time.Duration
	maxPairs int
	now      func() time.Time

	mu    sync.Mutex
	pairs map[pairKey]*pairState
}

type pairKey struct{ user, addr string }

// maxKeyUser bounds the username kept in a pair's key: valid names are at
// most 64 bytes, and a sign-in body may carry 4 KiB of name, which the
// table must not keep 100000 times.
const maxKeyUser = 65

func keyOf(user, addr string) pairKey {
	if len(user) > maxKeyUser {
		user = user[:maxKeyUser]
	}
	return pairKey{user, addr}
}

type pairState struct {
	fails    int       // consecutive failures
	until    time.Time // refused before this
	last     time.Time // last failure
	inFlight bool      // an attempt of a failing pair is being checked
}

// pairForget is how long a pair's failures are remembered after its last
// one.
const pairForget = 24 * time.Hour

func newLoginGuard(cfg Config) *loginGuard {
	return &loginGuard{
		addr:     NewLimiter(LimiterConfig{Rate: cfg.LoginRate, Burst: cfg.LoginBurst, Now: cfg.Now}),
		free:     cfg.LoginFreeFailures,
		base:     cfg.LoginBackoff,
		max:      cfg.LoginBackoffMax,
		maxPairs: 100000,
		now:      cfg.Now,
		pairs:    make(map[pairKey]*pairState),
	}
}

// begin decides whether an attempt of user from addr may check a password.
// If it may, the caller must call done with the outcome.
func (g *loginGuard) begin(user, addr string) (bool, time.Duration) {
	now := g.now()
	k := keyOf(user, addr)
	g.mu.Lock()
	if s := g.pairs[k]; s != nil && s.fails > 0 {
		if now.Sub(s.last) >= pairForget {
			delete(g.pairs, k)
		} else if wait := s.until.Sub(now); wait > 0 {
			g.mu.Unlock()
			return false, wait
		} else if s.inFlight {
			// A failing pair gets one guess at a time, or concurrent
			// requests would all pass this check before the first failure
			// is counted.
			g.mu.Unlock()
			return false, time.Second
		} else {
			s.inFlight = true
		}
	}
	g.mu.Unlock()
	if ok, wait := g.addr.Allow(addr); !ok {
		g.release(k)
		return false, wait
	}
	return true, 0
}

// release ends an attempt that checked no password.
func (g *loginGuard) release(k pairKey) {
	g.mu.Lock()
	if s := g.pairs[k]; s != nil {
		s.inFlight = false
	}
	g.mu.Unlock()
}

// done records the outcome of an attempt that begin let through. After a
// failure it returns how long the pair must now wait (0 if it need not).
func (g *loginGuard) done(user, addr string, ok bool) time.Duration {
	now := g.now()
	k := keyOf(user, addr)
	if ok {
		g.addr.refund(addr, 1)
		g.mu.Lock()
		delete(g.pairs, k)
		g.mu.Unlock()
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.pairs[k]
	if s == nil {
		if len(g.pairs) >= g.maxPairs {
			g.evictLocked(now)
		}
		s = &pairState{}
		g.pairs[k] = s
	}
	s.inFlight = false
	s.fails++
	s.last = now
	if over := s.fails - g.free; over > 0 {
		wait := g.max
		if over <= 30 && g.base<<(over-1) < g.max {
			wait = g.base << (over - 1)
		}
		s.until = now.Add(wait)
		return wait
	}
	return 0
}

// evictLocked makes room for a pair: it forgets pairs whose failures are
// old, and if none is, the one whose last failure is oldest (an attacker
// who floods the table resets at most their own oldest pair; refusing new
// pairs instead would lock everyone out). REQUIRES: g.mu.
func (g *loginGuard) evictLocked(now time.Time) {
	var oldest pairKey
	var oldestAt time.Time
	for k, s := range g.pairs {
		if now.Sub(s.last) >= pairForget {
			delete(g.pairs, k)
			continue
		}
		if oldestAt.IsZero() || s.last.Before(oldestAt) {
			oldest, oldestAt = k, s.last
		}
	}
	if len(g.pairs) >= g.maxPairs {
		delete(g.pairs, oldest)
	}
}

// ClientAddr returns the address of the client that made r, as a string
// for rate limiting and audit. It is the connecting address, unless that is
// one of the trusted proxies: then it is the rightmost address of
// X-Forwarded-For that is not a trusted proxy (each proxy appends the
// address it saw, so entries left of an untrusted one may be forged). An
// IPv6 client is keyed by its /64, which one subscriber usually holds
// whole. With no trusted proxies, X-Forwarded-For is never read.
func ClientAddr(r *http.Request, trusted []netip.Prefix) string {
	a := remoteAddr(r)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	if len(trusted) > 0 && isTrusted(a, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // malformed: believe nothing further left
			}
			a = h.Unmap()
			if !isTrusted(a, trusted) {
				break
			}
		}
	}
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

package auth

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// LimiterConfig configures a [Limiter].
type LimiterConfig struct {
	// Rate is the sustained number of events a second per key. Default 1.
	Rate float64
	// Burst is how many events a key may spend at once. Default 10.
	Burst int
	// MaxKeys bounds the memory of the limiter. When it is reached, full
	// buckets are forgotten; if none is full, new keys are refused (fail
	// closed). Default 100000.
	MaxKeys int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Limiter is a token-bucket rate limiter keyed by string (a user, an API
// token, a node id, a client address). Each key has a bucket of Burst tokens
// that refills at Rate a second. It holds no goroutine: buckets refill
// lazily when asked. Safe for concurrent use.
type Limiter struct {
	cfg LimiterConfig

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewLimiter returns a limiter with cfg's zero fields defaulted.
func NewLimiter(cfg LimiterConfig) *Limiter {
	if cfg.Rate <= 0 {
		cfg.Rate = 1
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, buckets: make(map[string]*bucket)}
}

// Allow spends one token of key's bucket. If the bucket is empty it returns
// false and how long until a token is available.
func (l *Limiter) Allow(key string) (bool, time.Duration) { return l.AllowN(key, 1) }

// AllowN spends n tokens at once (an evaluation of n blinded elements costs
// n). n larger than Burst is never allowed.
func (l *Limiter) AllowN(key string, n int) (bool, time.Duration) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.cfg.MaxKeys && !l.sweepLocked(now) {
			return false, time.Second
		}
		b = &bucket{tokens: float64(l.cfg.Burst), last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	need := float64(n)
	if need > float64(l.cfg.Burst) {
		return false, time.Duration(math.MaxInt64)
	}
	if b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	wait := time.Duration((need - b.tokens) / l.cfg.Rate * float64(time.Second))
	return false, wait
}

// refund gives n tokens back to key's bucket (up to Burst): a sign-in that
// succeeds costs its address nothing.
func (l *Limiter) refund(key string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.buckets[key]; ok {
		b.tokens = math.Min(float64(l.cfg.Burst), b.tokens+float64(n))
	}
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = math.Min(float64(l.cfg.Burst), b.tokens+dt.Seconds()*l.cfg.Rate)
		b.last = now
	}
}

// sweepLocked forgets buckets that have refilled (they are the same as a
// new one) and reports whether there is room. REQUIRES: l.mu.
func (l *Limiter) sweepLocked(now time.Time) bool {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= float64(l.cfg.Burst) {
			delete(l.buckets, k)
		}
	}
	return len(l.buckets) < l.cfg.MaxKeys
}

// WriteRateLimited writes the 429 response with Retry-After in whole seconds.
func WriteRateLimited(w http.ResponseWriter, wait time.Duration) {
	SetRetryAfter(w, wait)
	httpx.WriteError(w, http.StatusTooManyRequests, httpx.CodeRateLimited, "too many requests; try again later")
}

// SetRetryAfter sets the Retry-After header to wait in whole seconds, at
// least 1 and at most a day (a cost larger than the burst never fits).
func SetRetryAfter(w http.ResponseWriter, wait time.Duration) {
	secs := int64(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	if wait > 24*time.Hour {
		secs = 86400
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

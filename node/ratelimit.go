package node

import (
	"math"
	"net/http"
	"time"

	"github.com/signpost-federation/signpost/node/internal/auth"
)

// newLimiter is a token bucket per key (user, peer node) at rate a second
// with burst: the auth package's limiter, which forgets full buckets and
// fails closed when it holds too many keys.
func newLimiter(rate, burst float64, now func() time.Time) *auth.Limiter {
	return auth.NewLimiter(auth.LimiterConfig{Rate: rate, Burst: int(math.Ceil(burst)), Now: now})
}

// spend takes cost tokens from key's bucket of l, or returns the 429
// rate_limited error (with its Retry-After) carrying message.
func spend(l *auth.Limiter, key string, cost int, message string) *apiError {
	if ok, wait := l.AllowN(key, cost); !ok {
		return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: message, RetryAfter: wait}
	}
	return nil
}

package node

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// cost is what one request of a route spends from a token bucket.
type cost struct {
	// issuer: the issuer's per-requesting-node bucket (Config.PeerRate,
	// PeerBurst); otherwise the calling user's (Config.UserRate, UserBurst).
	issuer bool
	// perElement: one token per blinded element of the request's body;
	// otherwise one per request.
	perElement bool
	message    string
}

// costs is the node's one table of rate limits: route name (as the router
// names it) → what a request spends. Routes not listed are free. The router
// charges the user routes once the body is decoded (jsonHandler), or on entry
// for a route without a body (chargedRoute), and before the handler
// runs (see jsonHandler), so a refused request is neither tokenised nor
// audited; no handler spends. The issuer's entry is charged where the
// issuer evaluates (issuerEvaluate), after the requester's authorisation,
// because it bounds every requesting node — its own republication included
// — and a refusal there is audited.
var costs = map[string]cost{
	"locate":          {message: "too many lookups; slow down"},
	"lookup":          {message: "too many lookups; slow down"},
	"contact.request": {message: "too many contact requests; slow down"}, // it may tokenise a number
	"tokens.evaluate": {perElement: true, message: "too many evaluations; slow down"},
	"watch":           {message: "too many watches opened; slow down"}, // each handshake is an audit line
	"peer.evaluate":   {issuer: true, perElement: true, message: "evaluation rate exceeded for this node"},
}

// newLimiter is a token bucket per key (user, peer node) at rate a second
// with burst: the auth package's limiter, which forgets full buckets and
// fails closed when it holds too many keys.
func newLimiter(rate, burst float64, now func() time.Time) *auth.Limiter {
	return auth.NewLimiter(auth.LimiterConfig{Rate: rate, Burst: int(math.Ceil(burst)), Now: now})
}

// elementCounter is a request body whose cost is per element.
type elementCounter interface{ elements() int }

// charge spends route's cost for a request with body: from the user's
// bucket, or for the issuer's entry from requester's. It returns the 429
// rate_limited error (with its Retry-After), or nil.
func (n *Node) charge(ctx context.Context, route, requester string, body any) *apiError {
	c, ok := costs[route]
	if !ok {
		return nil
	}
	units := 1
	if ec, ok := body.(elementCounter); ok && c.perElement {
		units = ec.elements()
	}
	l, key := n.limiter, "user:"+principalFrom(ctx).Name
	if c.issuer {
		l, key = n.peerLimiter, "node:"+requester
	}
	if ok, wait := l.AllowN(key, units); !ok {
		return &apiError{Status: http.StatusTooManyRequests, Code: httpx.CodeRateLimited, Message: c.message, RetryAfter: wait}
	}
	return nil
}

// jsonRoute is n.route for a route with a JSON body, served by
// jsonHandler under the same name (the name its cost is found by).
func jsonRoute[T any](n *Node, name string, limit int64, h func(http.ResponseWriter, *http.Request, *T) error, roles ...string) http.Handler {
	return n.route(name, limit, jsonHandler(n, name, h), roles...)
}

// chargedRoute is n.route for a route without a JSON body whose cost is
// charged before its handler runs (the watch handshake).
func chargedRoute(n *Node, name string, limit int64, h handlerFunc, roles ...string) http.Handler {
	return n.route(name, limit, func(w http.ResponseWriter, r *http.Request) error {
		if ae := n.charge(r.Context(), name, "", nil); ae != nil {
			return ae
		}
		return h(w, r)
	}, roles...)
}

// jsonHandler is how the router serves a route with a JSON body: it
// decodes the body into a T (httpx.Decode, the node's one JSON rule),
// charges the route's cost (costs), and only then calls h.
func jsonHandler[T any](n *Node, route string, h func(http.ResponseWriter, *http.Request, *T) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req T
		if err := decode(r, &req); err != nil {
			return err
		}
		if c, ok := costs[route]; ok && !c.issuer { // the issuer's: see costs
			if ae := n.charge(r.Context(), route, "", &req); ae != nil {
				return ae
			}
		}
		return h(w, r, &req)
	}
}

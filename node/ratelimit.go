package node

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// cost is what one request of a route spends from a token bucket.
type cost struct {
	// issuer: the issuer's per-requesting-node bucket (Config.PeerRate,
	// PeerBurst); otherwise the calling user's (Config.UserRate, UserBurst;
	// for an API token Config.TokenRate, TokenBurst).
	issuer bool
	// peer: the requesting node's own bucket at the user rate (Config.
	// UserRate, UserBurst), keyed by its node id: a peer route that
	// stores what it is sent.
	peer bool
	// perElement: one token per blinded element of the request's body;
	// otherwise one per request.
	perElement bool
	// quota: the request also spends one from the user's daily quota
	// (Config.DailyLookups, DailyTokenLookups; see quotas).
	quota   bool
	message string
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
	"locate":          {quota: true, message: "too many lookups; slow down"},
	"lookup":          {quota: true, message: "too many lookups; slow down"},
	"contact.request": {message: "too many contact requests; slow down"}, // it may tokenise a number
	"contact.decide":  {message: "too many answers; slow down"},          // each is an audit line and a peer call
	"tokens.evaluate": {perElement: true, message: "too many evaluations; slow down"},
	"watch":           {message: "too many watches opened; slow down"},  // each handshake is an audit line
	"watches.create":  {message: "too many watches started; slow down"}, // each is stored and an audit line
	"watches.seen":    {message: "too many requests; slow down"},        // each is an audit line
	"peer.evaluate":   {issuer: true, perElement: true, message: "evaluation rate exceeded for this node"},
	"peer.contact":    {peer: true, message: "too many contact requests from this node; slow down"}, // each is stored and shown to staff
	// each opens a shield (a key agreement) and is stored and relayed
	"peer.brokered-contact": {peer: true, message: "too many contact requests from this node; slow down"},
	// a shielded node's entries, published by its broker
	"peer.shielded-entries": {peer: true, message: "too many entries from this node; slow down"},
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
	p := principalFrom(ctx)
	l, key := n.limiter, "user:"+p.Name
	if p.System {
		l = n.tokenLimiter
	}
	if c.issuer {
		l, key = n.peerLimiter, "node:"+requester
	}
	if c.peer {
		key = "node:" + peerFrom(ctx)
	}
	if ok, wait := l.AllowN(key, units); !ok {
		return &apiError{Status: http.StatusTooManyRequests, Code: httpx.CodeRateLimited, Message: c.message, RetryAfter: wait}
	}
	if c.quota {
		return n.quotas.spend(ctx, n, p)
	}
	return nil
}

// quotas is the per-user daily budget of lookups (the routes marked quota
// in costs), next to the per-second rate: 20 lookups a second is casework
// at the rate's burst, but about 1.7 million a day is a sweep. A person
// (a practitioner signed in, or any principal that is not a system) may
// make Config.DailyLookups a day, a system caller (an API token) its own
// quota (`signpost user quota`) or else Config.DailyTokenLookups, each
// counted on its own. A day is a UTC
// calendar day: the counts start again at 00:00 UTC, which the refusal
// names. The first time in a day a user passes Config.QuotaAlertShare of
// the quota the node raises an alert for its operators: the metric
// signpost_quota_alerts_total and a "quota-alert" audit line naming the
// user and the count. Counts live in memory: a restart forgets them.
type quotas struct {
	mu   sync.Mutex
	now  func() time.Time
	used map[string]*quotaUse
}

type quotaUse struct {
	day     time.Time // the UTC day counted
	n       int
	alerted bool
}

func newQuotas(now func() time.Time) *quotas {
	return &quotas{now: now, used: make(map[string]*quotaUse)}
}

// quotaKinds label the quota metrics: whose quota.
const (
	quotaPerson = "person"
	quotaSystem = "system"
)

// spend takes one lookup from p's quota for today, or returns the 429
// quota_exceeded refusal with the reset time (and Retry-After).
func (q *quotas) spend(ctx context.Context, n *Node, p Principal) *apiError {
	limit, kind := n.cfg.DailyLookups, quotaPerson
	if p.System {
		limit, kind = cmp.Or(p.DailyLookups, n.cfg.DailyTokenLookups), quotaSystem
	}
	now := q.now().UTC()
	day := now.Truncate(24 * time.Hour)
	reset := day.Add(24 * time.Hour)
	q.mu.Lock()
	u := q.used[p.Name]
	if u == nil || !u.day.Equal(day) {
		if u == nil && len(q.used) >= maxQuotaUsers {
			q.forgetBefore(day)
		}
		u = &quotaUse{day: day}
		q.used[p.Name] = u
	}
	if u.n >= limit {
		q.mu.Unlock()
		n.metrics.quotaRefused.WithLabelValues(kind).Inc()
		return &apiError{Status: http.StatusTooManyRequests, Code: httpx.CodeQuotaExceeded, RetryAfter: reset.Sub(now),
			Message: fmt.Sprintf("daily lookup quota of %d reached; it resets at %s", limit, reset.Format(time.RFC3339))}
	}
	u.n++
	count := u.n
	alert := !u.alerted && float64(count) > n.cfg.QuotaAlertShare*float64(limit)
	u.alerted = u.alerted || alert
	q.mu.Unlock()
	if alert {
		n.metrics.quotaAlerts.WithLabelValues(kind).Inc()
		n.log.Warn("a user passed the alert share of their daily lookup quota", "actor", p.Name, "count", count, "quota", limit)
		n.audit(ctx, AuditEvent{Action: "quota-alert", Actor: p.Name, Count: count, Outcome: "ok"})
	}
	return nil
}

// maxQuotaUsers is how many users' counts are kept before those of past
// days are dropped (each principal is an authenticated user or token, so
// the map is bounded by the users the node has; this keeps past days out).
const maxQuotaUsers = 4096

// forgetBefore drops counts of days before day; q.mu is held.
func (q *quotas) forgetBefore(day time.Time) {
	for k, u := range q.used {
		if u.day.Before(day) {
			delete(q.used, k)
		}
	}
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

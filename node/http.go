package node

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// apiError is the one error shape of the API, {"error":{"code","message"}}
// once written: httpx owns it, its codes and the JSON rules (decode,
// writeJSON and writeError below are httpx's).
type apiError = httpx.Error

var (
	errorf     = httpx.Errorf
	writeError = httpx.WriteError
	writeJSON  = httpx.WriteJSON
	decode     = httpx.Decode
)

type ctxKey int

const principalKey ctxKey = iota

func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey).(Principal)
	return p
}

// handlerFunc is an API handler: it returns an error to report, or nil once
// it has written its answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route wraps h with authentication, role check, CSRF for cookie writes, a
// body limit and error mapping. roles empty means public.
func (n *Node) route(name string, limit int64, h handlerFunc, roles ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() { n.metrics.observe(name, sw.status, time.Since(start)) }()
		if len(roles) > 0 {
			p, err := n.opt.Auth.Authenticate(r)
			if err != nil {
				ae := errorf(http.StatusUnauthorized, httpx.CodeUnauthenticated, "missing or wrong credentials")
				errors.As(err, &ae) // an expired token says so
				writeError(sw, ae.Status, ae.Code, ae.Message)
				return
			}
			if !slices.Contains(roles, p.Role) {
				writeError(sw, http.StatusForbidden, httpx.CodeForbidden, "your role may not do this")
				return
			}
			if p.Cookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
				if err := n.opt.Auth.CheckCSRF(r, p); err != nil {
					ae := errorf(http.StatusForbidden, httpx.CodeCSRFMissing, "this request needs the session's X-CSRF-Token header")
					errors.As(err, &ae)
					writeError(sw, ae.Status, ae.Code, ae.Message)
					return
				}
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey, p))
		}
		if limit > 0 && r.Body != nil {
			r.Body = http.MaxBytesReader(sw, r.Body, limit)
		}
		if err := h(sw, r); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				n.log.Error("request failed", "route", name, "err", err)
				ae = errorf(http.StatusInternalServerError, httpx.CodeInternal, "internal error")
				var ie *IssuersError
				if errors.As(err, &ie) {
					ae = errorf(http.StatusServiceUnavailable, httpx.CodeIssuersUnavailable, "%s", IssuersUnavailableMessage(ie))
				} else if errors.Is(err, ErrIssuerUnavailable) {
					ae = errorf(http.StatusServiceUnavailable, httpx.CodeUnavailable, "the token issuer cannot be reached; try again later")
				}
			}
			if ae.RetryAfter > 0 {
				auth.SetRetryAfter(sw, ae.RetryAfter)
			}
			writeError(sw, ae.Status, ae.Code, ae.Message)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the WebSocket upgrader reach the
// underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Handler returns the node's HTTP handler: API, probes, metrics, OpenAPI
// document and the practitioner page.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	lim := n.cfg.MaxBodyBytes
	mux.Handle("POST /v1/records", jsonRoute(n, "records.create", lim, n.handleCreateRecord, RoleOperator))
	mux.Handle("POST /v1/records/import", n.route("records.import", n.cfg.MaxImportBytes, n.handleImport, RoleOperator))
	mux.Handle("DELETE /v1/records/{localId}", n.route("records.delete", lim, n.handleDeleteRecord, RoleOperator))
	mux.Handle("POST /v1/records/{localId}/objection", n.route("records.object", lim, n.handleObject, RoleOperator))
	mux.Handle("POST /v1/objections", jsonRoute(n, "objections.object", lim, n.handleObjectPerson, RoleOperator))
	mux.Handle("POST /v1/objections/withdraw", jsonRoute(n, "objections.withdraw", lim, n.handleWithdrawObjection, RoleOperator))
	mux.Handle("POST /v1/locate", jsonRoute(n, "locate", lim, n.handleLocate, RolePractitioner))
	mux.Handle("POST /v1/tokens/evaluate", jsonRoute(n, "tokens.evaluate", lim, n.handleEvaluate, RolePractitioner))
	mux.Handle("POST /v1/lookup", jsonRoute(n, "lookup", lim, n.handleLookup, RolePractitioner))
	mux.Handle("POST /v1/contact-requests", jsonRoute(n, "contact.request", lim, n.handleContactRequest, RolePractitioner))
	mux.Handle("GET /v1/contact-requests", n.route("contact.list", lim, n.handleContactList, RolePractitioner, RoleOperator))
	mux.Handle("POST /v1/contact-requests/{id}/answer", jsonRoute(n, "contact.decide", lim, n.handleContactAnswer, RolePractitioner, RoleOperator))
	mux.Handle("POST /v1/contact-requests/{id}/decline", jsonRoute(n, "contact.decide", lim, n.handleContactDecline, RolePractitioner, RoleOperator))
	mux.Handle("GET /v1/watch", chargedRoute(n, "watch", lim, n.handleWatch, RolePractitioner))
	mux.Handle("POST /v1/watches", jsonRoute(n, "watches.create", lim, n.handleWatchCreate, RolePractitioner))
	mux.Handle("GET /v1/watches", n.route("watches.list", lim, n.handleWatchList, RolePractitioner))
	mux.Handle("DELETE /v1/watches/{id}", n.route("watches.stop", lim, n.handleWatchStop, RolePractitioner))
	mux.Handle("POST /v1/watches/{id}/seen", jsonRoute(n, "watches.seen", lim, n.handleWatchSeen, RolePractitioner))
	mux.Handle("POST /v1/audit/subject-access", jsonRoute(n, "audit.subject", lim, n.handleSubjectAccess, RoleAuditor))
	mux.Handle("GET /v1/federation", n.route("federation", lim, n.handleFederation, RoleOperator, RoleAuditor))
	mux.Handle("POST /v1/federation/dkg", jsonRoute(n, "federation.dkg.start", lim, n.handleDKGStart, RoleOperator))
	mux.Handle("GET /v1/federation/dkg", n.route("federation.dkg.list", lim, n.handleDKGSessions, RoleOperator, RoleAuditor))
	mux.Handle("GET /v1/federation/dkg/{session}/result", n.route("federation.dkg.result", lim, n.handleDKGResult, RoleOperator, RoleAuditor))
	mux.Handle("POST /v1/federation/key-records", jsonRoute(n, "federation.key-records", lim, n.handleKeyRecords, RoleOperator))
	mux.Handle("POST /v1/federation/reshare", jsonRoute(n, "federation.reshare.start", lim, n.handleReshareStart, RoleOperator))
	mux.Handle("POST /v1/federation/dkg/{session}/approve", n.route("federation.reshare.approve", lim, n.handleReshareApprove, RoleOperator))
	mux.Handle("POST /v1/federation/erase-old-shares", jsonRoute(n, "federation.erase-old-shares", lim, n.handleEraseOldShares, RoleOperator))
	mux.Handle("GET /v1/audit/heads", n.route("audit.heads", lim, n.handleAuditHeads, RoleAuditor))
	if h := n.opt.Auth.SessionHandler(); h != nil {
		mux.Handle("/v1/session", n.route("session", 0, func(w http.ResponseWriter, r *http.Request) error {
			h.ServeHTTP(w, r)
			return nil
		}))
	}
	mux.Handle("GET /v1/openapi.json", n.route("openapi", 0, n.handleOpenAPI))
	mux.Handle("GET /healthz", n.route("healthz", 0, n.handleHealthz))
	mux.Handle("GET /readyz", n.route("readyz", 0, n.handleReadyz))
	mux.Handle("GET /metrics", n.route("metrics", 0, n.handleMetrics))
	mux.Handle("/v1/", n.route("notfound", 0, func(http.ResponseWriter, *http.Request) error {
		return errorf(http.StatusNotFound, httpx.CodeNotFound, "no such endpoint")
	}))
	if !n.mountPage(mux) {
		// Without a page, nothing else would answer a path outside the API
		// and ServeMux would in plain text.
		mux.Handle("/", n.route("notfound", 0, func(http.ResponseWriter, *http.Request) error {
			return errorf(http.StatusNotFound, httpx.CodeNotFound, "no such endpoint")
		}))
	}
	return securityHeaders(checkRequestSize(mux))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

func (n *Node) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (n *Node) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	if !n.ready.Load() {
		return errorf(http.StatusServiceUnavailable, httpx.CodeNotReady, "the node is starting or stopping")
	}
	length, oldest := n.outboxStatus()
	writeJSON(w, http.StatusOK, n.readiness(length, oldest))
	return nil
}

// Readiness is /readyz's answer once the node is ready. A ready node
// answers lookups from its replica whatever else is down; Degraded says,
// in sentences for an operator, what does not work now (empty: nothing),
// and Outbox how many record changes wait to be published (the oldest for
// OutboxOldestSeconds).
type Readiness struct {
	Status              string   `json:"status"`
	Ready               bool     `json:"ready"`
	Degraded            []string `json:"degraded"`
	Outbox              int      `json:"outbox"`
	OutboxOldestSeconds int64    `json:"outboxOldestSeconds"`
}

// DegradedIssuer is the Degraded sentence while tokens cannot be made.
const DegradedIssuer = "issuer unavailable: new tokens cannot be made; lookups by lookup key answer from the replica, record changes are queued"

// DegradedBroker is the Degraded sentence while a shielded node's broker
// is not a member.
const DegradedBroker = "broker not a member: this shielded node's entries cannot be published until its broker (config broker) is in the federation; record changes are queued"

func (n *Node) readiness(length int, oldest time.Duration) Readiness {
	r := Readiness{Status: "ready", Ready: true, Degraded: []string{}, Outbox: length, OutboxOldestSeconds: int64(oldest.Seconds())}
	if n.issuerDown.Load() {
		r.Degraded = append(r.Degraded, DegradedIssuer)
	}
	if n.cfg.Shielded && (n.opt.Peers == nil || len(n.opt.Peers.Purposes(n.cfg.Broker)) == 0) {
		r.Degraded = append(r.Degraded, DegradedBroker)
	}
	return r
}

// Hijack lets the WebSocket upgrader take the connection.
func (s *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil && s.status == 0 {
		s.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

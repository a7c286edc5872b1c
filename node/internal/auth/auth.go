package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// Header and cookie names.
const (
	// CSRFHeader carries the session's CSRF token on state-changing requests.
	CSRFHeader = "X-CSRF-Token"
	// DefaultCookieName is the session cookie's name.
	DefaultCookieName = "signpost_session"
)

// Config configures an [Authenticator]. Build it from [DefaultConfig].
type Config struct {
	// UsersPath is the users and tokens file, usually
	// <data dir>/users.json. Required.
	UsersPath string
	// Argon2 is the cost of new password hashes. Default
	// DefaultArgon2Params.
	Argon2 Argon2Params
	// SessionIdle ends a session unused for this long. Default 30 minutes.
	SessionIdle time.Duration
	// SessionMax ends a session this long after sign-in whatever its use.
	// Default 12 hours.
	SessionMax time.Duration
	// MaxSessions bounds live sessions; sign-in fails with 503 beyond it.
	// Default 10000.
	MaxSessions int
	// Secure sets the cookie's Secure attribute. Set it whenever the node
	// serves TLS or sits behind a TLS-terminating proxy (it must, outside a
	// laptop demo). Default false.
	Secure bool
	// CookieName is the session cookie's name. Default DefaultCookieName.
	CookieName string
	// AllowedOrigins lists the origins ("https://node.example:8443") that
	// may open WebSockets and send state-changing requests with a session
	// cookie. Empty means same-origin only: the Origin's host must equal
	// the request's Host.
	AllowedOrigins []string
	// LoginRate and LoginBurst limit sign-in attempts per client address
	// (a successful one is given back). Default 0.2 a second (12 a
	// minute), burst 5.
	LoginRate  float64
	LoginBurst int
	// LoginFreeFailures is how many times one username may fail from one
	// client address before that pair backs off: LoginBackoff after the
	// next failure, doubling with each further one up to LoginBackoffMax.
	// Only the failing pair waits; the same user elsewhere does not.
	// Defaults 3, 2 seconds, 15 minutes.
	LoginFreeFailures int
	LoginBackoff      time.Duration
	LoginBackoffMax   time.Duration
	// TrustedProxies are the proxies (CIDRs) whose X-Forwarded-For header
	// is believed for the client address ([ClientAddr]). Empty: the
	// connecting address is the client's.
	TrustedProxies []netip.Prefix
	// LoginConcurrency bounds argon2id hashes running at once (each takes
	// Argon2.Memory). Default 2.
	LoginConcurrency int
	// Agency is the agency whose node this is, named in every session
	// answer so that the page can say whose system the user signed in to.
	Agency SessionAgency
	// Purposes, if set, returns the purposes a signed-in user may look up
	// under, named in every session answer so that the page offers those
	// and no other; nil offers none. The node decides (its configured
	// purposes, for the roles that look up); the auth package only passes
	// the answer on.
	Purposes func(p Principal) []string
	// OnLogin, if set, is called after every sign-in attempt with the user
	// (zero on failure) and whether it succeeded, so that the node can
	// audit it. It is never given what was typed.
	OnLogin func(r *http.Request, p Principal, ok bool)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults listed on each field of Config.
func DefaultConfig() Config {
	return Config{
		Argon2:           DefaultArgon2Params,
		SessionIdle:      30 * time.Minute,
		SessionMax:       12 * time.Hour,
		MaxSessions:      10000,
		CookieName:       DefaultCookieName,
		LoginRate:        0.2,
		LoginBurst:       5,
		LoginConcurrency: 2,

		LoginFreeFailures: 3,
		LoginBackoff:      2 * time.Second,
		LoginBackoffMax:   15 * time.Minute,
		Now:               time.Now,
	}
}

// Authenticator authenticates HTTP requests (session cookie or API token),
// enforces roles and CSRF, and serves sign-in and sign-out. Sessions live in
// memory (a restart signs everyone out) and are keyed by the SHA-256 of their
// id, so the map never holds a usable cookie. Safe for concurrent use; it
// starts no goroutines.
type Authenticator struct {
	cfg    Config
	store  *Store
	login  *loginGuard
	hashes chan struct{} // semaphore for argon2id work

	mu       sync.Mutex
	sessions map[[32]byte]*session
}

type session struct {
	userID   string
	csrf     string
	created  time.Time
	lastSeen time.Time // guarded by Authenticator.mu
}

// New returns an Authenticator over the store at cfg.UsersPath. It copies
// cfg, fills zero fields from DefaultConfig and validates the rest.
func New(cfg Config) (*Authenticator, error) {
	d := DefaultConfig()
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = d.Argon2
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = d.SessionIdle
	}
	if cfg.SessionMax == 0 {
		cfg.SessionMax = d.SessionMax
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = d.MaxSessions
	}
	if cfg.CookieName == "" {
		cfg.CookieName = d.CookieName
	}
	if cfg.LoginRate == 0 {
		cfg.LoginRate = d.LoginRate
	}
	if cfg.LoginBurst == 0 {
		cfg.LoginBurst = d.LoginBurst
	}
	if cfg.LoginConcurrency == 0 {
		cfg.LoginConcurrency = d.LoginConcurrency
	}
	if cfg.LoginFreeFailures == 0 {
		cfg.LoginFreeFailures = d.LoginFreeFailures
	}
	if cfg.LoginBackoff == 0 {
		cfg.LoginBackoff = d.LoginBackoff
	}
	if cfg.LoginBackoffMax == 0 {
		cfg.LoginBackoffMax = d.LoginBackoffMax
	}
	if cfg.Now == nil {
		cfg.Now = d.Now
	}
	cfg.AllowedOrigins = append([]string(nil), cfg.AllowedOrigins...)
	cfg.TrustedProxies = append([]netip.Prefix(nil), cfg.TrustedProxies...)
	var errs []error
	if cfg.UsersPath == "" {
		errs = append(errs, errors.New("UsersPath is required"))
	}
	if cfg.SessionIdle < 0 || cfg.SessionMax < cfg.SessionIdle {
		errs = append(errs, errors.New("need 0 < SessionIdle <= SessionMax"))
	}
	if cfg.MaxSessions < 0 || cfg.LoginRate < 0 || cfg.LoginBurst < 0 || cfg.LoginConcurrency < 0 ||
		cfg.LoginFreeFailures < 0 || cfg.LoginBackoff < 0 || cfg.LoginBackoffMax < cfg.LoginBackoff {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	for _, o := range cfg.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			errs = append(errs, fmt.Errorf("allowed origin %q is not scheme://host[:port]", o))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("auth: config: %w", err)
	}
	store, err := OpenStore(cfg.UsersPath, cfg.Argon2, cfg.Now)
	if err != nil {
		return nil, err
	}
	return &Authenticator{
		cfg:      cfg,
		store:    store,
		login:    newLoginGuard(cfg),
		hashes:   make(chan struct{}, cfg.LoginConcurrency),
		sessions: make(map[[32]byte]*session),
	}, nil
}

// Store returns the user and token store.
func (a *Authenticator) Store() *Store { return a.store }

// failure says why a request that presented credentials is anonymous.
type failure struct {
	code    httpx.Code
	message string
	cause   error // what Identify returns, if not ErrUnauthenticated
}

var (
	failBadToken = &failure{httpx.CodeUnauthenticated, "the API token is unknown or revoked", nil}
	failExpired  = &failure{httpx.CodeSessionExpired, "your session has expired; sign in again", nil}
	failSession  = &failure{httpx.CodeUnauthenticated, "the session is not valid; sign in again", nil}
	failNone     = &failure{httpx.CodeUnauthenticated, "sign in, or send an API token, to use this", nil}
)

// Authenticate is middleware that finds the request's principal — an API
// token in "Authorization: Bearer spt_…", else the session cookie — and puts
// it in the context for [PrincipalFrom]. It never rejects a request itself:
// a request without valid credentials goes on anonymous, and [Require] then
// answers 401 with the reason (unknown token, expired session). So the page
// and /v1/session can sit behind it too.
func (a *Authenticator) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, fail := a.authenticate(r)
		ctx := r.Context()
		if fail != nil {
			ctx = contextWithFailure(ctx, fail)
		} else {
			ctx = WithPrincipal(ctx, p)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (a *Authenticator) authenticate(r *http.Request) (Principal, *failure) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Principal{}, failBadToken
		}
		t, err := a.store.CheckToken(strings.TrimSpace(tok))
		var expired *TokenExpiredError
		if errors.As(err, &expired) {
			return Principal{}, &failure{httpx.CodeTokenExpired, expired.Advice(), expired}
		}
		if err != nil {
			return Principal{}, failBadToken
		}
		return Principal{Kind: KindToken, ID: t.ID, Name: t.Name, Role: t.Role, DailyLookups: t.DailyLookups}, nil
	}
	c, err := r.Cookie(a.cfg.CookieName)
	if err != nil {
		return Principal{}, failNone
	}
	return a.sessionPrincipal(c.Value)
}

// sessionPrincipal resolves a cookie value to its user, ending the session
// if it has expired or its user was removed.
func (a *Authenticator) sessionPrincipal(cookie string) (Principal, *failure) {
	id, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil || len(id) != 32 {
		return Principal{}, failSession
	}
	key := sha256.Sum256(id)
	now := a.cfg.Now()
	a.mu.Lock()
	s, ok := a.sessions[key]
	if ok && (now.Sub(s.lastSeen) >= a.cfg.SessionIdle || now.Sub(s.created) >= a.cfg.SessionMax) {
		delete(a.sessions, key)
		a.mu.Unlock()
		return Principal{}, failExpired
	}
	if ok {
		s.lastSeen = now
	}
	a.mu.Unlock()
	if !ok {
		return Principal{}, failSession
	}
	u, exists := a.store.userByID(s.userID)
	if !exists {
		a.mu.Lock()
		delete(a.sessions, key)
		a.mu.Unlock()
		return Principal{}, failSession
	}
	return Principal{Kind: KindUser, ID: u.ID, Name: u.Name, Role: u.Role, session: s}, nil
}

// Require returns middleware that lets a request through only if it has a
// principal with one of roles: 401 (unauthenticated or session_expired)
// without one, 403 forbidden with the wrong role. With no roles, any
// principal passes. Put it inside [Authenticator.Authenticate].
func (a *Authenticator) Require(roles ...Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				f := failureFrom(r)
				httpx.WriteError(w, http.StatusUnauthorized, f.code, f.message)
				return
			}
			if len(roles) > 0 && !hasRole(p.Role, roles) {
				httpx.WriteError(w, http.StatusForbidden, httpx.CodeForbidden,
					fmt.Sprintf("this needs the %s role", joinRoles(roles)))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func hasRole(r Role, roles []Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

func joinRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// CSRF is middleware that protects cookie sessions from cross-site requests:
// every request other than GET, HEAD and OPTIONS made with a session cookie
// must carry the session's token in the X-CSRF-Token header (synchronizer
// token pattern; 403 csrf_missing or csrf_invalid) and, if it has an Origin
// header, an allowed origin (403 origin_forbidden). Requests authenticated by
// API token are exempt: a browser cannot be made to attach an Authorization
// header cross-site. Put it inside [Authenticator.Authenticate].
func (a *Authenticator) CSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.csrfOK(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Authenticator) csrfOK(w http.ResponseWriter, r *http.Request) bool {
	p, _ := PrincipalFrom(r.Context())
	switch err := a.CheckCSRF(r, p); err {
	case nil:
		return true
	case ErrOrigin:
		httpx.WriteError(w, http.StatusForbidden, httpx.CodeOriginForbidden, "this origin may not use this node")
	case ErrCSRFMissing:
		httpx.WriteError(w, http.StatusForbidden, httpx.CodeCSRFMissing, "this request needs the X-CSRF-Token header from sign-in")
	default:
		httpx.WriteError(w, http.StatusForbidden, httpx.CodeCSRFInvalid, "the X-CSRF-Token header does not match this session")
	}
	return false
}

// Protect wraps h in the usual chain for an API endpoint:
// Authenticate, then Require(roles...), then CSRF.
func (a *Authenticator) Protect(h http.Handler, roles ...Role) http.Handler {
	return a.Authenticate(a.Require(roles...)(a.CSRF(h)))
}

// CheckOrigin reports whether the request's Origin header is allowed: absent
// (not a browser), on AllowedOrigins, or — when that list is empty — the same
// host as the request. Its signature fits websocket.Upgrader.CheckOrigin.
func (a *Authenticator) CheckOrigin(r *http.Request) bool {
	return OriginAllowed(r, a.cfg.AllowedOrigins)
}

// OriginAllowed is [Authenticator.CheckOrigin] with an explicit allow-list.
func OriginAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if len(allowed) == 0 {
		return strings.EqualFold(u.Host, r.Host)
	}
	for _, o := range allowed {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

func contextWithFailure(ctx context.Context, f *failure) context.Context {
	return context.WithValue(ctx, failureKey, f)
}

func failureFrom(r *http.Request) *failure {
	if f, ok := r.Context().Value(failureKey).(*failure); ok {
		return f
	}
	return failNone
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Errors of [Authenticator.Identify] and [Authenticator.CheckCSRF], for
// callers that build their own middleware.
var (
	ErrUnauthenticated = errors.New("auth: missing or wrong credentials")
	ErrSessionExpired  = errors.New("auth: session expired")
	ErrCSRFMissing     = errors.New("auth: missing CSRF token")
	ErrCSRFInvalid     = errors.New("auth: wrong CSRF token")
	ErrOrigin          = errors.New("auth: origin not allowed")
)

// Identify returns the request's principal, or an error wrapping
// [ErrUnauthenticated], [ErrSessionExpired] or [ErrTokenExpired] (a
// *[TokenExpiredError]). It is
// [Authenticator.Authenticate] without the middleware, for package node's own
// routing.
func (a *Authenticator) Identify(r *http.Request) (Principal, error) {
	p, f := a.authenticate(r)
	switch f {
	case nil:
		return p, nil
	case failExpired:
		return Principal{}, ErrSessionExpired
	default:
		if f.cause != nil {
			return Principal{}, f.cause
		}
		return Principal{}, fmt.Errorf("%w: %s", ErrUnauthenticated, f.message)
	}
}

// CheckCSRF checks a state-changing request of p as the [Authenticator.CSRF]
// middleware does: nil for safe methods and for principals that did not come
// from a session cookie; else [ErrOrigin], [ErrCSRFMissing] or
// [ErrCSRFInvalid]. The HTTP codes for them are httpx.CodeOriginForbidden,
// httpx.CodeCSRFMissing and httpx.CodeCSRFInvalid, all 403.
func (a *Authenticator) CheckCSRF(r *http.Request, p Principal) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if p.session == nil {
		return nil
	}
	if !a.CheckOrigin(r) {
		return ErrOrigin
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		return ErrCSRFMissing
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(p.session.csrf)) != 1 {
		return ErrCSRFInvalid
	}
	return nil
}

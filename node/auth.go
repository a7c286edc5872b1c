package node

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

// Roles, as in the auth package.
const (
	RolePractitioner = "practitioner"
	RoleOperator     = "operator"
	RoleAuditor      = "auditor"
)

// Principal is who is calling.
type Principal struct {
	Name string
	Role string
	// Cookie is true for a browser session: writes then need a CSRF token.
	Cookie bool
	// System is true for a system caller (an API token) rather than a
	// person: its daily lookup quota is DailyLookups if set, else
	// Config.DailyTokenLookups.
	System       bool
	DailyLookups int
}

// Authenticator decides who a request comes from. Production: the
// node/internal/auth package (sessions, CSRF, API tokens) through an adapter.
type Authenticator interface {
	// Authenticate returns the caller or ErrUnauthenticated.
	Authenticate(r *http.Request) (Principal, error)
	// CheckCSRF checks the CSRF token (and the Origin) of a
	// cookie-authenticated write.
	CheckCSRF(r *http.Request, p Principal) error
	// SessionHandler serves sign-in and sign-out at /v1/session; nil for an
	// authenticator without sessions.
	SessionHandler() http.Handler
}

// Authentication errors.
var (
	ErrUnauthenticated = errors.New("node: missing or wrong credentials")
	ErrCSRF            = errors.New("node: missing or wrong CSRF token")
)

// StaticTokens authenticates `Authorization: Bearer <token>` against a fixed
// table. It is what tests, benchmarks and single-purpose system integrations
// use; it has no cookies and so no CSRF.
type StaticTokens map[string]Principal

// Authenticate implements Authenticator in constant time per token.
func (s StaticTokens) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return Principal{}, ErrUnauthenticated
	}
	var found Principal
	hit := 0
	for k, p := range s {
		if subtle.ConstantTimeCompare([]byte(k), []byte(tok)) == 1 {
			found, hit = p, 1
		}
	}
	if hit == 0 {
		return Principal{}, ErrUnauthenticated
	}
	return found, nil
}

// CheckCSRF implements Authenticator: bearer tokens need none.
func (StaticTokens) CheckCSRF(*http.Request, Principal) error { return nil }

// SessionHandler implements Authenticator: no sessions.
func (StaticTokens) SessionHandler() http.Handler { return nil }

package node

import (
	"errors"
	"net/http"

	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// UserAuth is the production Authenticator: node/internal/auth's users,
// sessions (with CSRF) and API tokens. It also serves /v1/session.
type UserAuth struct{ A *auth.Authenticator }

// Authenticate implements Authenticator.
func (u UserAuth) Authenticate(r *http.Request) (Principal, error) {
	p, err := u.A.Identify(r)
	var expired *auth.TokenExpiredError
	if errors.As(err, &expired) {
		return Principal{}, errorf(http.StatusUnauthorized, httpx.CodeTokenExpired, expired.Advice())
	}
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Name: p.Actor(), Role: string(p.Role), Cookie: p.ViaSession(), System: p.Kind == auth.KindToken, DailyLookups: p.DailyLookups}, nil
}

// CheckCSRF implements Authenticator, mapping the auth package's errors to
// its stable codes.
func (u UserAuth) CheckCSRF(r *http.Request, p Principal) error {
	ap, err := u.A.Identify(r)
	if err != nil {
		return ErrUnauthenticated
	}
	err = u.A.CheckCSRF(r, ap)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrOrigin):
		return errorf(http.StatusForbidden, httpx.CodeOriginForbidden, "this origin may not send requests with a session")
	case errors.Is(err, auth.ErrCSRFInvalid):
		return errorf(http.StatusForbidden, httpx.CodeCSRFInvalid, "the X-CSRF-Token header does not match the session")
	default:
		return errorf(http.StatusForbidden, httpx.CodeCSRFMissing, "this request needs the session's X-CSRF-Token header")
	}
}

// SessionHandler implements Authenticator: sign-in and sign-out.
func (u UserAuth) SessionHandler() http.Handler { return u.A.SessionHandler() }

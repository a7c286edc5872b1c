package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// LoginRequest is the body of POST /v1/session.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// SessionResponse is the body of a successful POST or GET /v1/session. The
// page keeps CSRFToken in memory and sends it as X-CSRF-Token on every
// state-changing request.
type SessionResponse struct {
	User      SessionUser `json:"user"`
	CSRFToken string      `json:"csrfToken"`
	ExpiresAt time.Time   `json:"expiresAt"` // the absolute expiry
	// Agency is the agency whose node the user signed in to
	// ([Config.Agency]); the page names it.
	Agency SessionAgency `json:"agency"`
	// Purposes are the purposes this user may look up under at this node
	// ([Config.Purposes]), never null: the page offers these and no other.
	Purposes []string `json:"purposes"`
}

// SessionAgency is the agency a node serves, as the page names it.
type SessionAgency struct {
	NodeID   string `json:"nodeId"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// SessionUser is the signed-in user as the page sees it.
type SessionUser struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// SessionHandler serves /v1/session:
//
//	POST   {"username","password"} → 200 SessionResponse and the cookie;
//	       401 unauthenticated (wrong username or password, same message
//	       for both), 415/400 bad body, 403 origin_forbidden, 429
//	       rate_limited with Retry-After (seconds) and a message saying
//	       how long to wait (see loginGuard: only the failing username
//	       and address wait).
//	GET    → 200 SessionResponse for the current cookie (the page calls it
//	       after a reload to get its CSRF token back); 401 otherwise.
//	DELETE → 204, ending the session and clearing the cookie; needs the
//	       X-CSRF-Token header like any state-changing request.
//
// It does its own authentication: mount it without other middleware.
func (a *Authenticator) SessionHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			a.serveLogin(w, r)
		case http.MethodGet:
			a.Authenticate(http.HandlerFunc(a.serveCurrent)).ServeHTTP(w, r)
		case http.MethodDelete:
			a.Authenticate(http.HandlerFunc(a.serveLogout)).ServeHTTP(w, r)
		default:
			w.Header().Set("Allow", "GET, POST, DELETE")
			httpx.WriteError(w, http.StatusMethodNotAllowed, httpx.CodeMethod, "use POST to sign in, GET to check, DELETE to sign out")
		}
	})
}

func (a *Authenticator) serveLogin(w http.ResponseWriter, r *http.Request) {
	// A cross-site page could post a form here to sign the victim in as
	// the attacker (login CSRF); forms cannot send application/json and
	// the Origin check refuses fetches from other sites.
	if !a.CheckOrigin(r) {
		httpx.WriteError(w, http.StatusForbidden, httpx.CodeOriginForbidden, "this origin may not use this node")
		return
	}
	var req LoginRequest
	if httpx.DecodeJSON(w, r, 4<<10, &req) != nil {
		return
	}
	addr := ClientAddr(r, a.cfg.TrustedProxies)
	if ok, wait := a.login.begin(req.Username, addr); !ok {
		writeLoginLimited(w, wait)
		return
	}
	select {
	case a.hashes <- struct{}{}:
	case <-r.Context().Done():
		a.login.release(keyOf(req.Username, addr))
		return
	}
	u, err := a.store.CheckPassword(req.Username, []byte(req.Password))
	<-a.hashes
	a.login.done(req.Username, addr, err == nil)
	if err != nil {
		if a.cfg.OnLogin != nil {
			a.cfg.OnLogin(r, Principal{}, false)
		}
		httpx.WriteError(w, http.StatusUnauthorized, httpx.CodeUnauthenticated, "wrong username or password")
		return
	}
	id := newSecret()
	raw, _ := base64.RawURLEncoding.DecodeString(id)
	now := a.cfg.Now()
	s := &session{userID: u.ID, csrf: newSecret(), created: now, lastSeen: now}
	a.mu.Lock()
	if len(a.sessions) >= a.cfg.MaxSessions {
		a.sweepLocked(now)
	}
	full := len(a.sessions) >= a.cfg.MaxSessions
	if !full {
		a.sessions[sha256.Sum256(raw)] = s
	}
	a.mu.Unlock()
	if full {
		httpx.WriteError(w, http.StatusServiceUnavailable, httpx.CodeUnavailable, "too many people are signed in; try again later")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     a.cfg.CookieName,
		Value:    id,
		Path:     "/",
		MaxAge:   int(a.cfg.SessionMax / time.Second),
		HttpOnly: true,
		Secure:   a.cfg.Secure,
		SameSite: http.SameSiteStrictMode,
	})
	p := Principal{Kind: KindUser, ID: u.ID, Name: u.Name, Role: u.Role, session: s}
	if a.cfg.OnLogin != nil {
		a.cfg.OnLogin(r, p, true)
	}
	httpx.WriteJSON(w, http.StatusOK, a.sessionResponse(p))
}

// writeLoginLimited answers a refused sign-in: 429 with Retry-After and the
// wait in words, which the page shows.
func writeLoginLimited(w http.ResponseWriter, wait time.Duration) {
	SetRetryAfter(w, wait)
	secs := w.Header().Get("Retry-After")
	unit := "seconds"
	if secs == "1" {
		unit = "second"
	}
	httpx.WriteError(w, http.StatusTooManyRequests, httpx.CodeRateLimited,
		fmt.Sprintf("too many failed sign-ins; try again in %s %s", secs, unit))
}

func (a *Authenticator) sessionResponse(p Principal) SessionResponse {
	purposes := []string{}
	if a.cfg.Purposes != nil {
		purposes = append(purposes, a.cfg.Purposes(p)...)
	}
	return SessionResponse{
		User:      SessionUser{Name: p.Name, Role: p.Role},
		CSRFToken: p.session.csrf,
		ExpiresAt: p.session.created.Add(a.cfg.SessionMax).UTC(),
		Agency:    a.cfg.Agency,
		Purposes:  purposes,
	}
}

func (a *Authenticator) serveCurrent(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok || p.session == nil {
		f := failureFrom(r)
		if ok {
			f = &failure{httpx.CodeUnauthenticated, "API tokens have no session", nil}
		}
		httpx.WriteError(w, http.StatusUnauthorized, f.code, f.message)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, a.sessionResponse(p))
}

func (a *Authenticator) serveLogout(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok || p.session == nil {
		f := failureFrom(r)
		httpx.WriteError(w, http.StatusUnauthorized, f.code, f.message)
		return
	}
	if !a.csrfOK(w, r) {
		return
	}
	a.mu.Lock()
	for k, s := range a.sessions {
		if s == p.session {
			delete(a.sessions, k)
		}
	}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: a.cfg.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.cfg.Secure, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// sweepLocked drops expired sessions. REQUIRES: a.mu.
func (a *Authenticator) sweepLocked(now time.Time) {
	for k, s := range a.sessions {
		if now.Sub(s.lastSeen) >= a.cfg.SessionIdle || now.Sub(s.created) >= a.cfg.SessionMax {
			delete(a.sessions, k)
		}
	}
}

// SessionCount returns the number of live sessions (for metrics and tests).
func (a *Authenticator) SessionCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sessions)
}

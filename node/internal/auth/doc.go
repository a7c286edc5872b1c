// Package auth decides who may do what on a node: local user accounts with
// roles, sessions for the practitioner page, API tokens for systems, CSRF
// protection, origin checks for WebSockets and token-bucket rate limits.
//
// # Principals and roles
//
// A request is made by a [Principal]: a user (signed in with a password, then
// carried by a session cookie), a system (an API token in the Authorization
// header) or another node (authenticated by package node, which puts the
// principal in the context with [WithPrincipal]). Each has exactly one
// [Role]: practitioner, operator or auditor. Roles do not nest; an endpoint
// lists every role it admits.
//
// # Storage
//
// Users and API tokens live in one JSON file under the node's data
// directory ([Store]), mode 0600, replaced atomically on each change and
// re-read when it changes on disk, so the admin CLI (`signpost user add`)
// works while the node runs. A JSON file rather than a bbolt bucket: the
// population is tens of accounts, the CLI and the node must both reach it
// while the node holds its own database open (bbolt allows one process),
// and an operator can inspect it. Passwords are stored as argon2id hashes
// (RFC 9106 parameters, per-user 128-bit salt, PHC string format); API
// tokens, being 256-bit random secrets, as SHA-256. Neither a password nor a
// token is ever stored, logged or put in an error.
//
// # Sessions and CSRF
//
// Sessions are in memory, keyed by the SHA-256 of a 256-bit random id; the
// cookie is HttpOnly, SameSite=Strict, Secure when the node serves TLS or
// sits behind a trusted proxy, and
// ends after an idle and an absolute time measured on an injectable clock.
// Each session has a CSRF token (synchronizer pattern) that sign-in returns
// and every state-changing cookie request must echo in X-CSRF-Token. API
// token requests are exempt: a browser attaches cookies to cross-site
// requests but never an Authorization header.
//
// # Sign-in limits and API token lifetimes
//
// Sign-in attempts are limited per client address ([ClientAddr]: the
// connecting address, or X-Forwarded-For through Config.TrustedProxies
// only) and backed off exponentially per (username, address) pair, never
// per username alone, so that nobody can lock a user out from elsewhere
// (loginGuard). An unknown username costs the same argon2id work as a
// wrong password. API tokens expire (DefaultTokenTTL unless made with
// [Store.AddTokenFor]) and rotate ([Store.RotateToken]); an expired one is
// refused with httpx.CodeTokenExpired.
//
// # Data in and out
//
// Requests enter through [Authenticator.Authenticate] (which only
// identifies), [Authenticator.Require] (401/403) and [Authenticator.CSRF];
// sign-in and sign-out through [Authenticator.SessionHandler]. Denials leave
// no state behind and answer with the JSON error envelope of package httpx
// and a stable code.
package auth

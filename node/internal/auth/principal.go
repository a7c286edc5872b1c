package auth

import (
	"context"
	"fmt"
)

// Role is what a principal may do. Roles are flat: no role includes another.
type Role string

// The three roles of issue 4.
const (
	// RolePractitioner looks people up, requests contact and watches.
	RolePractitioner Role = "practitioner"
	// RoleOperator runs the node: records, imports, federation settings.
	RoleOperator Role = "operator"
	// RoleAuditor reads the audit log and answers subject-access requests.
	RoleAuditor Role = "auditor"
)

// Roles lists every role, for usage messages and tests.
var Roles = []Role{RolePractitioner, RoleOperator, RoleAuditor}

// ParseRole parses a role name, refusing unknown ones.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w: %q is not one of practitioner, operator, auditor", ErrUnknownRole, s)
}

// Kind says how a principal authenticated.
type Kind string

// Principal kinds.
const (
	KindUser  Kind = "user"  // a person, by password and then a session cookie
	KindToken Kind = "token" // a system, by API token in the Authorization header
	KindNode  Kind = "node"  // another federation node, authenticated by package node
)

// Principal is who is making a request, as [Authenticator.Authenticate] found.
type Principal struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"` // stable random id of the user or token; the node id for KindNode
	Name string `json:"name"`
	Role Role   `json:"role"`
	// DailyLookups is an API token's own daily lookup quota (0: the node's
	// default); see APIToken.
	DailyLookups int `json:"dailyLookups,omitempty"`

	// session is set for cookie sessions: CSRF checks need it.
	session *session
}

// Actor is the principal as the audit log names it: "user:<name>",
// "token:<name>" or "node:<id>".
func (p Principal) Actor() string {
	if p.Kind == KindNode {
		return "node:" + p.ID
	}
	return string(p.Kind) + ":" + p.Name
}

// ViaSession reports whether the principal came from a session cookie (and so
// its state-changing requests need a CSRF token).
func (p Principal) ViaSession() bool { return p.session != nil }

type ctxKey int

const (
	principalKey ctxKey = iota
	failureKey
)

// WithPrincipal returns a context carrying p. Package node uses it for
// node-to-node calls it has authenticated itself, and tests use it directly.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the principal of a request's context, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/signpost-federation/signpost/node/internal/auth"
)

func Example() {
	dir, _ := os.MkdirTemp("", "auth-example")
	defer os.RemoveAll(dir)

	cfg := auth.DefaultConfig()
	cfg.UsersPath = filepath.Join(dir, auth.UsersFileName)
	cfg.Argon2 = auth.TestArgon2Params // cheap, for the example only
	a, err := auth.New(cfg)
	if err != nil {
		panic(err)
	}
	a.Store().AddUser("alice", auth.RolePractitioner, []byte("correct horse battery"))
	token, _, _ := a.Store().AddToken("case-system", auth.RoleOperator)

	lookup := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.PrincipalFrom(r.Context())
		fmt.Fprintln(w, "hello", p.Actor())
	})
	mux := http.NewServeMux()
	mux.Handle("/v1/session", a.SessionHandler())
	mux.Handle("POST /v1/lookup", a.Protect(lookup, auth.RolePractitioner))

	try := func(r *http.Request) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	// No credentials.
	try(httptest.NewRequest("POST", "/v1/lookup", nil))
	// An API token with the wrong role.
	r := httptest.NewRequest("POST", "/v1/lookup", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	try(r)
	// Output:
	// 401 {"error":{"code":"unauthenticated","message":"sign in, or send an API token, to use this"}}
	// 403 {"error":{"code":"forbidden","message":"this needs the practitioner role"}}
}

package node

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/internal/leakscan"
)

// TestExpiredTokenRefused: an API token past its expiry is refused by the
// node's API with 401 token_expired naming the token and the command that
// replaces it (before, tokens never expired, and any refusal said only
// "missing or wrong credentials").
func TestExpiredTokenRefused(t *testing.T) {
	an := newAuthedNode(t)
	// A store whose clock is 100 days back makes a 90-day token that
	// expired 10 days ago.
	past, err := auth.OpenStore(an.users, auth.TestArgon2Params, func() time.Time { return time.Now().Add(-100 * 24 * time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := past.AddToken("old-system", auth.RolePractitioner)
	if err != nil {
		t.Fatal(err)
	}
	leaks.NoteString(leakscan.KindAPIToken, old)
	for _, tc := range []struct {
		tok      string
		status   int
		code     httpx.Code
		inAnswer string
	}{
		{old, 401, httpx.CodeTokenExpired, "signpost user rotate --name old-system"},
		{"spt_unknown", 401, httpx.CodeUnauthenticated, ""},
		{an.tokens[RolePractitioner], 200, "", ""},
	} {
		req, _ := http.NewRequest("GET", an.srv.URL+"/v1/contact-requests", nil)
		req.Header.Set("Authorization", "Bearer "+tc.tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct {
				Code    httpx.Code `json:"code"`
				Message string     `json:"message"`
			} `json:"error"`
		}
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != tc.status || body.Error.Code != tc.code || !strings.Contains(body.Error.Message, tc.inAnswer) {
			t.Errorf("token %.8s…: %d %s %q, want %d %s containing %q", tc.tok, res.StatusCode, body.Error.Code, body.Error.Message, tc.status, tc.code, tc.inAnswer)
		}
	}
}

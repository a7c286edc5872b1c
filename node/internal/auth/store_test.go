package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

func openTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), UsersFileName)
	s, err := OpenStore(path, TestArgon2Params, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

func TestPasswordHash(t *testing.T) {
	h := hashPassword([]byte("correct horse battery"), TestArgon2Params)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if h2 := hashPassword([]byte("correct horse battery"), TestArgon2Params); h2 == h {
		t.Fatal("two hashes of one password are equal: no per-user salt")
	}
	for _, tt := range []struct {
		pw   string
		want bool
	}{{"correct horse battery", true}, {"correct horse batterz", false}, {"", false}} {
		ok, err := checkPassword([]byte(tt.pw), h)
		if err != nil || ok != tt.want {
			t.Errorf("check(%q) = %v, %v", tt.pw, ok, err)
		}
	}
	bad := []string{
		"",
		"plain",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$c2hvcnQ",
	}
	for _, b := range bad {
		if _, err := checkPassword([]byte("x"), b); !errors.Is(err, ErrBadHash) {
			t.Errorf("checkPassword(%q): err %v", b, err)
		}
	}
}

func TestStoreUsers(t *testing.T) {
	s, path := openTestStore(t)
	u, err := s.AddUser("alice", RolePractitioner, []byte("correct horse battery"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Hash != "" || u.ID == "" {
		t.Fatalf("AddUser returned %+v", u)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v %v", st.Mode(), err)
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), "correct horse") {
		t.Fatal("password stored")
	}
	tests := []struct {
		name, user string
		role       Role
		pw         string
		want       error
	}{
		{"duplicate", "alice", RoleAuditor, "another long password", ErrExists},
		{"short password", "bob", RoleAuditor, "short", ErrWeakPassword},
		{"unknown role", "bob", Role("admin"), "another long password", ErrUnknownRole},
		{"name starting with a digit", "9990000018", RoleAuditor, "another long password", ErrBadName},
		{"name with a space", "bob smith", RoleAuditor, "another long password", ErrBadName},
		{"empty name", "", RoleAuditor, "another long password", ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.AddUser(tt.user, tt.role, []byte(tt.pw)); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := s.CheckPassword("alice", []byte("correct horse battery")); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"alice", "wrong password"}, {"nobody", "correct horse battery"}} {
		if _, err := s.CheckPassword(c[0], []byte(c[1])); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("CheckPassword(%s): %v", c[0], err)
		}
	}

	// A second store on the same file (the CLI while the node runs) sees
	// changes made by the first, and the first sees the second's.
	other, err := OpenStore(path, TestArgon2Params, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.AddUser("bob", RoleAuditor, []byte("another long password")); err != nil {
		t.Fatal(err)
	}
	users, _ := s.Users()
	if len(users) != 2 || users[1].Name != "bob" || users[1].Hash != "" {
		t.Fatalf("users %+v", users)
	}
	if err := s.RemoveUser("bob"); err != nil {
		t.Fatal(err)
	}
	if err := other.RemoveUser("bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestStoreTokens(t *testing.T) {
	s, path := openTestStore(t)
	secret, tok, err := s.AddToken("case-system", RolePractitioner)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) != len(TokenPrefix)+43 || tok.Hash != "" {
		t.Fatalf("token %q %+v", secret, tok)
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), secret) || strings.Contains(string(raw), secret[len(TokenPrefix):]) {
		t.Fatal("token stored in the clear")
	}
	got, err := s.CheckToken(secret)
	if err != nil || got.Name != "case-system" || got.Role != RolePractitioner {
		t.Fatalf("CheckToken: %+v %v", got, err)
	}
	for _, bad := range []string{"", secret + "x", secret[:len(secret)-1], strings.ToUpper(secret)} {
		if _, err := s.CheckToken(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("CheckToken(variant): %v", err)
		}
	}
	if _, _, err := s.AddToken("case-system", RoleOperator); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate token name: %v", err)
	}
	if err := s.RemoveToken("case-system"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckToken(secret); !errors.Is(err, ErrBadToken) {
		t.Fatalf("revoked token still works: %v", err)
	}
}

// TestRotationSeenByAnotherProcess: `signpost user rotate` changes the file
// under a running node (here a second Store on the same file). Every
// rotation must stop the old token at once on the node, however quickly it
// follows the one before: a rewrite of the same size within one tick of the
// file system's clock leaves the same modification time.
func TestRotationSeenByAnotherProcess(t *testing.T) {
	running, path := openTestStore(t)
	cli, err := OpenStore(path, TestArgon2Params, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := cli.AddToken("case-system", RolePractitioner)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := running.CheckToken(secret); err != nil {
			t.Fatalf("rotation %d: the current token is refused: %v", i, err)
		}
		next, _, err := cli.RotateToken("case-system", DefaultTokenTTL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := running.CheckToken(secret); !errors.Is(err, ErrBadToken) {
			t.Fatalf("rotation %d: the rotated-out token still works on the running node: %v", i, err)
		}
		secret = next
	}
}

func TestStoreRejectsCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), UsersFileName)
	os.WriteFile(path, []byte(`{"version":2}`), 0o600)
	if _, err := OpenStore(path, TestArgon2Params, nil); err == nil {
		t.Fatal("opened a version-2 file")
	}
	os.WriteFile(path, []byte(`{"version":1,"users":[],"tokens":[],"extra":1}`), 0o600)
	if _, err := OpenStore(path, TestArgon2Params, nil); err == nil {
		t.Fatal("opened a file with unknown fields")
	}
}

func TestLimiter(t *testing.T) {
	c := newClock()
	l := NewLimiter(LimiterConfig{Rate: 2, Burst: 3, Now: c.Now, MaxKeys: 2})
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("alice"); !ok {
			t.Fatalf("burst %d refused", i)
		}
	}
	ok, wait := l.Allow("alice")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("empty bucket: %v %v", ok, wait)
	}
	if ok, _ := l.Allow("bob"); !ok {
		t.Fatal("keys share a bucket")
	}
	c.Advance(500 * time.Millisecond)
	if ok, _ := l.Allow("alice"); !ok {
		t.Fatal("no refill after 0.5 s at 2/s")
	}
	if ok, _ := l.AllowN("bob", 4); ok {
		t.Fatal("AllowN over burst allowed")
	}
	if ok, _ := l.AllowN("bob", 2); !ok {
		t.Fatal("AllowN within burst refused")
	}
	// MaxKeys: alice and bob are not full, so a third key is refused
	// (fail closed) until one of them refills.
	if ok, _ := l.Allow("carol"); ok {
		t.Fatal("third key allowed over MaxKeys")
	}
	c.Advance(10 * time.Second)
	if ok, _ := l.Allow("carol"); !ok {
		t.Fatal("third key refused after buckets refilled")
	}
	// Burst never exceeded after a long idle time.
	c.Advance(time.Hour)
	n := 0
	for {
		if ok, _ := l.Allow("carol"); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("after an hour %d allowed, want burst 3", n)
	}
}

// TestTokenExpiry: a token is refused from its expiry on, with an error
// that names it; a token written before expiries existed expires
// DefaultTokenTTL after its creation.
func TestTokenExpiry(t *testing.T) {
	clock := newClock()
	path := filepath.Join(t.TempDir(), UsersFileName)
	s, err := OpenStore(path, TestArgon2Params, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	tok, meta, err := s.AddTokenFor("nightly", RolePractitioner, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !meta.Expires.Equal(clock.Now().Add(48 * time.Hour)) {
		t.Fatalf("expires %v", meta.Expires)
	}
	clock.Advance(48*time.Hour - time.Second)
	if _, err := s.CheckToken(tok); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	clock.Advance(time.Second)
	_, err = s.CheckToken(tok)
	var exp *TokenExpiredError
	if !errors.Is(err, ErrTokenExpired) || !errors.As(err, &exp) || exp.Name != "nightly" || !strings.Contains(exp.Advice(), "signpost user rotate --name nightly") {
		t.Fatalf("at expiry: %v", err)
	}
	if _, _, err := s.AddTokenFor("x", RolePractitioner, 0); err == nil {
		t.Error("a token valid for no time was made")
	}
	if _, _, err := s.AddTokenFor("x", RolePractitioner, MaxTokenTTL+time.Hour); err == nil {
		t.Error("a token valid beyond MaxTokenTTL was made")
	}

	// An old file: no expires field.
	old, _, err := s.AddToken("legacy", RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var f file
	json.Unmarshal(b, &f)
	for i := range f.Tokens {
		f.Tokens[i].Expires = time.Time{}
	}
	b, _ = json.Marshal(f)
	if bytes.Contains(b, []byte(`"expires"`)) {
		t.Fatal("a zero expiry is written")
	}
	os.WriteFile(path, b, 0o600)
	clock.Advance(DefaultTokenTTL - time.Second)
	if _, err := s.CheckToken(old); err != nil {
		t.Fatalf("legacy token before Created+DefaultTokenTTL: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := s.CheckToken(old); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("legacy token at Created+DefaultTokenTTL: %v", err)
	}
	// Rotation gives a working token again.
	fresh, _, err := s.RotateToken("legacy", DefaultTokenTTL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckToken(fresh); err != nil {
		t.Fatalf("rotated: %v", err)
	}
}

// TestExpiredTokenAnswer: a request with an expired token gets 401
// token_expired saying which token and how to get a new one.
func TestExpiredTokenAnswer(t *testing.T) {
	f := newFixture(t, nil)
	f.clock.Advance(DefaultTokenTTL)
	r := f.do("GET", "/v1/lookup", "", map[string]string{"Authorization": "Bearer " + f.token})
	if r.status != 401 || r.code != httpx.CodeTokenExpired {
		t.Fatalf("expired token: %d %s", r.status, r.code)
	}
	msg, _ := r.body["error"].(map[string]any)["message"].(string)
	if !strings.Contains(msg, `"case-system" expired`) || !strings.Contains(msg, "signpost user rotate") {
		t.Errorf("message %q", msg)
	}
	if _, err := f.a.Identify(func() *http.Request {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		return req
	}()); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("Identify: %v", err)
	}
}

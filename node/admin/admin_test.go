package admin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/auth"
)

func init() { argonParams = auth.TestArgon2Params }

func run(main func(context.Context, []string, io.Reader, io.Writer, io.Writer) int, stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"add", "correct horse battery\n", []string{"add", "--data", dir, "--name", "alice", "--role", "practitioner", "--password-stdin"}, 0, "added user alice (practitioner)", ""},
		{"add with prompt", "another long password", []string{"add", "--data", dir, "--name", "ola", "--role", "operator"}, 0, "added user ola", "Password for ola"},
		{"duplicate", "correct horse battery\n", []string{"add", "--data", dir, "--name", "alice", "--role", "auditor", "--password-stdin"}, 1, "", "already in use"},
		{"short password", "short\n", []string{"add", "--data", dir, "--name", "bob", "--role", "auditor", "--password-stdin"}, 1, "", "too short"},
		{"no password", "", []string{"add", "--data", dir, "--name", "bob", "--role", "auditor", "--password-stdin"}, 1, "", "no password"},
		{"bad role", "", []string{"add", "--data", dir, "--name", "bob", "--role", "admin"}, 2, "", "not one of practitioner"},
		{"no name", "", []string{"add", "--data", dir, "--role", "auditor"}, 2, "", "--name is required"},
		{"unknown subcommand", "", []string{"frob"}, 2, "", "unknown subcommand"},
		{"no subcommand", "", nil, 2, "", "Usage: signpost user"},
		{"stray argument", "", []string{"list", "--data", dir, "extra"}, 2, "", "unexpected argument"},
		{"remove unknown", "", []string{"remove", "--data", dir, "--name", "nobody"}, 1, "", "no such user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(UserMain, tt.stdin, tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) || !strings.Contains(errs, tt.wantErr) {
				t.Fatalf("code %d out %q err %q; want %d %q %q", code, out, errs, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if strings.Contains(out+errs, "correct horse") {
				t.Fatal("the password was echoed")
			}
		})
	}

	code, tok, errs := run(UserMain, "", "token", "--data", dir, "--name", "case-system", "--role", "practitioner")
	tok = strings.TrimSpace(tok)
	if code != 0 || !strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Fatalf("token: %d %q", code, tok)
	}
	// The token is shown once, on stdout, to the operator who made it;
	// diagnostics never carry it.
	noSecret(t, "token stderr", errs, tok)
	store, err := auth.OpenStore(filepath.Join(dir, auth.UsersFileName), auth.TestArgon2Params, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tk, err := store.CheckToken(tok); err != nil || tk.Role != auth.RolePractitioner {
		t.Fatalf("printed token does not authenticate: %v", err)
	}
	if _, err := store.CheckPassword("alice", []byte("correct horse battery")); err != nil {
		t.Fatalf("added user cannot sign in: %v", err)
	}
	code, out, _ := run(UserMain, "", "list", "--data", dir)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "case-system") || strings.Contains(out, "argon2") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	noSecret(t, "list", out, tok)
	code, out, errs = run(UserMain, "", "remove", "--data", dir, "--name", "case-system", "--token")
	if code != 0 {
		t.Fatal("remove token failed")
	}
	noSecret(t, "remove token", out+errs, tok)
	if _, err := store.CheckToken(tok); err == nil {
		t.Fatal("removed token still works")
	}
	if code, _, _ := run(UserMain, "", "remove", "--data", dir, "--name", "alice"); code != 0 {
		t.Fatal("remove user failed")
	}
}

// noSecret fails the test if text contains any of the secrets, in hex or
// base64 as well as verbatim.
func noSecret(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, enc := range []string{s, hex.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))} {
			if strings.Contains(text, enc) {
				t.Fatalf("%s: the output contains a secret", what)
			}
		}
	}
}

// nodeKey signs the test logs, as a node's key does.
var nodeKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// writeLog writes a small log with subjects under known lookup keys.
func writeLog(t *testing.T) (string, audit.TreeHead) {
	t.Helper()
	path := filepath.Join(t.TempDir(), audit.FileName)
	if err := audit.EnsurePublicKey(path+".pub", nodeKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(path, audit.Config{NoSync: true, Signer: nodeKey})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // saves the head file, as the node does
	when := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		if _, err := l.Append(audit.Event{Time: when, Actor: "user:alice", Action: audit.ActionLookup, Purpose: "safeguarding",
			Outcome: audit.OutcomeOK, Subjects: l.Refs(bytes.Repeat([]byte{byte(i % 2)}, 16))}); err != nil {
			t.Fatal(err)
		}
	}
	return path, l.Head()
}

func TestAuditCommands(t *testing.T) {
	path, head := writeLog(t)
	intact, _ := os.ReadFile(path)
	tampered := filepath.Join(filepath.Dir(path), "tampered.log")
	os.WriteFile(tampered, bytes.Replace(intact, []byte(`"i":2,"event":{"time":"2026-11-25T10:00:00Z","actor":"user:alice"`), []byte(`"i":2,"event":{"time":"2026-11-25T10:00:00Z","actor":"user:mallory"`), 1), 0o600)
	short := filepath.Join(filepath.Dir(path), "short.log")
	os.WriteFile(short, intact[:bytes.LastIndexByte(intact[:len(intact)-1], '\n')+1], 0o600)
	nokey := filepath.Join(filepath.Dir(path), "nokey.log")
	os.WriteFile(nokey, intact, 0o600)
	pubFile, _ := os.ReadFile(path + ".pub")
	for _, p := range []string{tampered, short} {
		os.WriteFile(p+".pub", pubFile, 0o644)
	}
	t.Setenv("SIGNPOST_TOKEN", "")

	lk := hex.EncodeToString(bytes.Repeat([]byte{1}, 16))
	auditKey, _ := os.ReadFile(path + ".key")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"verify intact", []string{"verify", "--log", path}, 0, "ok: 5 events, root " + head.Root.String(), ""},
		{"verify intact: signatures and saved head checked", []string{"verify", "--log", path}, 0, "saved head: size 5 matches", ""},
		{"verify tampered", []string{"verify", "--log", tampered}, 1, "", "line 3: audit: line tampered with"},
		{"verify truncated against trusted head", []string{"verify", "--log", short, "--trusted-size", "5", "--trusted-root", head.Root.String()}, 1, "", "log truncated"},
		{"verify truncated, against the saved head", []string{"verify", "--log", short, "--head-file", path + ".head", "--pubkey-file", path + ".pub"}, 1, "", "log truncated"},
		{"verify without a public key", []string{"verify", "--log", nokey}, 1, "", "no public key"},
		{"verify without signatures says so", []string{"verify", "--log", nokey, "--no-signatures"}, 0, "ok: 5 events", "WARNING: signatures NOT checked"},
		{"no signatures and a key", []string{"verify", "--log", path, "--no-signatures", "--pubkey", audit.FormatPublicKey(nodeKey.Public().(ed25519.PublicKey))}, 2, "", "goes with neither"},
		{"verify with a given key", []string{"verify", "--log", nokey, "--pubkey", audit.FormatPublicKey(nodeKey.Public().(ed25519.PublicKey))}, 0, "every line signed by", ""},
		{"pubkey", []string{"pubkey", "--log", path}, 0, audit.FormatPublicKey(nodeKey.Public().(ed25519.PublicKey)) + "\n", ""},
		{"pubkey missing", []string{"pubkey", "--log", nokey}, 1, "", "the node writes it at start"},
		{"witnessed without a token", []string{"verify", "--log", path, "--witnessed", "http://127.0.0.1:1"}, 2, "", "auditor API token"},
		{"verify missing file", []string{"verify", "--log", path + ".nope"}, 1, "", "no such file"},
		{"trusted root without size", []string{"verify", "--log", path, "--trusted-root", head.Root.String()}, 2, "", "go together"},
		{"bad pubkey", []string{"verify", "--log", path, "--pubkey", "zz"}, 2, "", "--pubkey"},
		{"head", []string{"head", "--log", path}, 0, `"size":5`, ""},
		{"subject by ref needs one", []string{"subject", "--log", path}, 2, "", "at least one"},
		{"bad ref", []string{"subject", "--log", path, "--ref", "xyz"}, 2, "", "subject ref"},
		{"bad lookup key", []string{"subject", "--log", path, "--lookup-key", lk + "zz"}, 2, "", "--lookup-key must be hex"},
		{"lookup key without the audit key", []string{"subject", "--log", path, "--lookup-key", lk, "--key", path + ".nope"}, 1, "", "missing or not 32 bytes"},
		{"unknown", []string{"frob"}, 2, "", "unknown subcommand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(AuditMain, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) || !strings.Contains(errs, tt.wantErr) {
				t.Fatalf("code %d out %q err %q; want %d %q %q", code, out, errs, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			noSecret(t, tt.name, out+errs, lk, string(auditKey), string(bytes.Repeat([]byte{1}, 16)))
		})
	}

	// Subject access: by lookup key (with the audit key) and by ref agree.
	code, out, errs := run(AuditMain, "", "subject", "--log", path, "--lookup-key", lk)
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("subject: %d %q %q", code, out, errs)
	}
	var e audit.Entry
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &e); err != nil || e.Index != 1 || e.Actor != "user:alice" {
		t.Fatalf("first entry %+v %v", e, err)
	}
	key, _ := os.ReadFile(path + ".key")
	ref := audit.RefFor(key, bytes.Repeat([]byte{1}, 16)).String()
	code, out2, _ := run(AuditMain, "", "subject", "--log", path, "--ref", ref)
	if code != 0 || out2 != out {
		t.Fatalf("by ref: %d %q", code, out2)
	}
	noSecret(t, "subject", out+out2+errs, lk, string(key), string(bytes.Repeat([]byte{1}, 16)))
}

func TestAuditProve(t *testing.T) {
	path, head := writeLog(t)
	code, out, errs := run(AuditMain, "", "prove", "--log", path, "--old-size", "3", "--index", "1")
	if code != 0 {
		t.Fatalf("prove: %d %s", code, errs)
	}
	var p proof
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if p.Head.Root != head.Root || p.OldSize != 3 {
		t.Fatalf("proof %+v", p)
	}
	// A witness that kept the head of size 3 checks the log only grew.
	if err := audit.VerifyConsistency(3, head.Size, p.Consistency, p.OldRoot, head.Root); err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyInclusion(*p.Leaf, 1, head.Size, p.Inclusion, head.Root); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"prove", "--log", path},
		{"prove", "--log", path, "--old-size", "9"},
		{"prove", "--log", path, "--old-size", "2", "--index", "7"},
	} {
		if code, _, _ := run(AuditMain, "", bad...); code == 0 {
			t.Errorf("%v succeeded", bad)
		}
	}
}

// TestTokenExpiryAndRotation: API tokens used to live for ever. Now `user
// token` makes one valid for 90 days (or --valid-for), `user list` shows
// when each expires, and `user rotate` replaces one: the new token works,
// the old stops at once, the role stays.
func TestTokenExpiryAndRotation(t *testing.T) {
	dir := t.TempDir()
	before := time.Now()
	code, old, errs := run(UserMain, "", "token", "--data", dir, "--name", "case-system", "--role", "operator")
	old = strings.TrimSpace(old)
	if code != 0 || !strings.Contains(errs, "valid until") {
		t.Fatalf("token: %d %q", code, errs)
	}
	code, short, _ := run(UserMain, "", "token", "--data", dir, "--name", "nightly", "--role", "practitioner", "--valid-for", "7d")
	short = strings.TrimSpace(short)
	if code != 0 {
		t.Fatal("token --valid-for 7d failed")
	}
	if code, _, errs := run(UserMain, "", "token", "--data", dir, "--name", "forever", "--role", "practitioner", "--valid-for", "100000d"); code == 0 {
		t.Fatalf("a token valid for 100000 days was made: %s", errs)
	}
	store, err := auth.OpenStore(filepath.Join(dir, auth.UsersFileName), auth.TestArgon2Params, nil)
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := store.Tokens()
	want := map[string]time.Duration{"case-system": 90 * 24 * time.Hour, "nightly": 7 * 24 * time.Hour}
	for _, tk := range toks {
		if d := tk.ExpiresAt().Sub(before); d < want[tk.Name] || d > want[tk.Name]+time.Minute {
			t.Errorf("%s expires in %v, want %v", tk.Name, d, want[tk.Name])
		}
	}
	code, out, _ := run(UserMain, "", "list", "--data", dir)
	if code != 0 || !strings.Contains(out, "EXPIRES") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	for _, tk := range toks {
		if !strings.Contains(out, tk.ExpiresAt().Format(time.RFC3339)) {
			t.Errorf("list does not show %s's expiry:\n%s", tk.Name, out)
		}
	}

	code, fresh, errs := run(UserMain, "", "rotate", "--data", dir, "--name", "case-system")
	fresh = strings.TrimSpace(fresh)
	if code != 0 || !strings.HasPrefix(fresh, auth.TokenPrefix) || fresh == old {
		t.Fatalf("rotate: %d %q %q", code, fresh, errs)
	}
	noSecret(t, "rotate stderr", errs, fresh, old)
	if _, err := store.CheckToken(old); err == nil {
		t.Error("the rotated-out token still works")
	}
	if tk, err := store.CheckToken(fresh); err != nil || tk.Role != auth.RoleOperator || tk.Name != "case-system" {
		t.Errorf("the new token: %+v %v", tk, err)
	}
	if _, err := store.CheckToken(short); err != nil {
		t.Errorf("rotation touched another token: %v", err)
	}
	if code, _, errs := run(UserMain, "", "rotate", "--data", dir, "--name", "nobody"); code != 1 || !strings.Contains(errs, "no such") {
		t.Errorf("rotate unknown: %d %s", code, errs)
	}
}

// TestTokenQuota: `user quota` gives an API token its own daily lookup
// quota, which `user list` shows, the token's principal carries to the
// node, and a rotation keeps; 0 returns it to the node's default.
func TestTokenQuota(t *testing.T) {
	dir := t.TempDir()
	code, secret, _ := run(UserMain, "", "token", "--data", dir, "--name", "case-system", "--role", "practitioner")
	if code != 0 {
		t.Fatal("token failed")
	}
	if code, _, errs := run(UserMain, "", "quota", "--data", dir, "--name", "case-system"); code != 2 || !strings.Contains(errs, "--daily-lookups") {
		t.Fatalf("quota without a number: %d %s", code, errs)
	}
	if code, _, errs := run(UserMain, "", "quota", "--data", dir, "--name", "nobody", "--daily-lookups", "5"); code != 1 || !strings.Contains(errs, "no such") {
		t.Fatalf("quota of an unknown token: %d %s", code, errs)
	}
	if code, out, errs := run(UserMain, "", "quota", "--data", dir, "--name", "case-system", "--daily-lookups", "50000"); code != 0 || !strings.Contains(out, "50000") {
		t.Fatalf("quota: %d %s %s", code, out, errs)
	}
	if code, out, _ := run(UserMain, "", "list", "--data", dir); code != 0 || !strings.Contains(out, "DAILY LOOKUPS") || !strings.Contains(out, "50000") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	// A store opened afresh each time: the store notices another process's
	// writes by the file's size and time, which two quick writes may share.
	check := func(secret string) (auth.APIToken, error) {
		t.Helper()
		store, err := auth.OpenStore(filepath.Join(dir, auth.UsersFileName), auth.TestArgon2Params, nil)
		if err != nil {
			t.Fatal(err)
		}
		return store.CheckToken(strings.TrimSpace(secret))
	}
	if tk, err := check(secret); err != nil || tk.DailyLookups != 50000 {
		t.Fatalf("token: %+v %v", tk, err)
	}
	code, fresh, _ := run(UserMain, "", "rotate", "--data", dir, "--name", "case-system")
	if tk, err := check(fresh); code != 0 || err != nil || tk.DailyLookups != 50000 {
		t.Fatalf("after rotation: %+v %v", tk, err)
	}
	run(UserMain, "", "quota", "--data", dir, "--name", "case-system", "--daily-lookups", "0")
	if tk, err := check(fresh); err != nil || tk.DailyLookups != 0 {
		t.Fatalf("back to the default: %+v %v", tk, err)
	}
}

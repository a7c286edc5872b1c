package federation

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// syncBuffer is a bytes.Buffer safe for one writer and polling readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := FederationMain(context.Background(), args, nil, &out, &errb); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errb.String())
	}
	return out.String()
}

func TestCLIUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"help", []string{"init", "-h"}, 0},
		{"missing dir", []string{"init"}, 2},
		{"bad flag", []string{"enrol", "-nope"}, 2},
		{"stray argument", []string{"revoke", "x"}, 2},
		{"missing config", []string{"run", "-config", filepath.Join(t.TempDir(), "none.json")}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := FederationMain(context.Background(), tc.args, nil, &out, &errb); got != tc.want {
				t.Fatalf("exit %d, want %d (%s)", got, tc.want, errb.String())
			}
		})
	}
}

// TestCLIRun: init an authority, enrol one node with a generated key and
// one from its own keygen, revoke a third, and run them with `signpost
// federation run`: the revoked one refuses to start, the other two see
// each other join and leave cleanly.
func TestCLIRun(t *testing.T) {
	dir := t.TempDir()
	auth := filepath.Join(dir, "authority")
	runCLI(t, "init", "-dir", auth)
	if _, err := InitAuthorityDir(auth, testNow); err == nil {
		t.Fatal("init overwrote an authority")
	}
	creds0 := filepath.Join(dir, "node-0.credentials")
	runCLI(t, "enrol", "-dir", auth, "-id", "node-0", "-agency", "Borsetshire Children's Services",
		"-category", "social-care", "-purposes", "safeguarding,direct-care", "-out", creds0)
	key1, pub1 := filepath.Join(dir, "node.key"), filepath.Join(dir, "node.pub")
	runCLI(t, "keygen", "-key", key1, "-pub", pub1)
	desc1 := filepath.Join(dir, "node-1.descriptor")
	runCLI(t, "enrol", "-dir", auth, "-id", "node-1", "-agency", "Felpersham School",
		"-category", "education", "-pub", pub1, "-out", desc1)
	creds1 := filepath.Join(dir, "node-1.credentials")
	concat(t, creds1, desc1, key1)
	runCLI(t, "enrol", "-dir", auth, "-id", "node-2", "-agency", "Gone", "-category", "health", "-out", filepath.Join(dir, "node-2.credentials"))
	if out := runCLI(t, "revoke", "-dir", auth, "-id", "node-2"); !strings.Contains(out, "version 2") {
		t.Fatalf("revoke: %s", out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code int
		err  string
	}
	start := func(name, creds string, join []string) (*syncBuffer, chan result) {
		rc := RunConfig{
			DataDir: filepath.Join(dir, name), GossipBind: "127.0.0.1:0", PeerBind: "127.0.0.1:0",
			AuthorityPublicKey: filepath.Join(auth, AuthorityPublicFile), GossipKey: filepath.Join(auth, GossipKeyFile),
			Credentials: creds, Revocations: filepath.Join(auth, RevocationsFile), Join: join, Fast: true,
		}
		b, _ := json.Marshal(rc)
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out := &syncBuffer{}
		done := make(chan result, 1)
		go func() {
			var errb syncBuffer
			code := FederationMain(ctx, []string{"run", "-config", path}, nil, out, &errb)
			done <- result{code, errb.String()}
		}()
		return out, done
	}
	// The revoked node refuses to start: its own descriptor is revoked.
	_, done2 := start("node-2", filepath.Join(dir, "node-2.credentials"), nil)
	if r := <-done2; r.code != 1 || !strings.Contains(r.err, "revoked") {
		t.Fatalf("revoked node: exit %d: %s", r.code, r.err)
	}
	addrRE := regexp.MustCompile(`gossip (\S+) peer`)
	out0, done0 := start("node-0", creds0, nil)
	var gossip0 string
	testutil.Eventually(t, convergeTimeout, func() error {
		m := addrRE.FindStringSubmatch(out0.String())
		if m == nil {
			return errors.New("node-0 has not printed its address")
		}
		gossip0 = m[1]
		return nil
	})
	out1, done1 := start("node-1", creds1, []string{gossip0})
	testutil.Eventually(t, convergeTimeout, func() error {
		if !strings.Contains(out0.String(), "joined node-1") || !strings.Contains(out1.String(), "joined node-0") {
			return fmt.Errorf("no join seen:\n%s\n%s", out0.String(), out1.String())
		}
		return nil
	})
	cancel()
	for _, done := range []chan result{done0, done1} {
		if r := <-done; r.code != 0 {
			t.Fatalf("run exited %d: %s", r.code, r.err)
		}
	}
	testutil.VerifyNone(t)
}

func concat(t *testing.T, dst string, srcs ...string) {
	t.Helper()
	var b []byte
	for _, s := range srcs {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, data...)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCLIIssuerKeygen: `keygen -issuer` makes the issuer's token key
// (before, a standalone node needed a hand-written helper): 32 bytes at
// mode 0600 that wasm.NewIssuer accepts, its public key printed as the
// config line every node needs, and an existing key never overwritten.
func TestCLIIssuerKeygen(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "issuer.key")
	out := runCLI(t, "keygen", "-issuer", "-key", key)
	st, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("%s: mode %04o, %d bytes; want 0600, 32", key, st.Mode().Perm(), st.Size())
	}
	sk, _ := os.ReadFile(key)
	iss, err := wasm.NewIssuer(sk)
	if err != nil {
		t.Fatal(err)
	}
	if want := "issuer_public_key = '" + base64.StdEncoding.EncodeToString(iss.PublicKey()) + "'\n"; out != want {
		t.Fatalf("printed %q, want %q", out, want)
	}
	if strings.Contains(out, base64.StdEncoding.EncodeToString(sk)) {
		t.Fatal("the private key was printed")
	}
	var o, e bytes.Buffer
	if code := FederationMain(context.Background(), []string{"keygen", "-issuer", "-key", key}, nil, &o, &e); code != 1 || !strings.Contains(e.String(), "already exists") {
		t.Fatalf("second keygen over the same file: exit %d %s", code, e.String())
	}
	if again, _ := os.ReadFile(key); !bytes.Equal(again, sk) {
		t.Fatal("the key was overwritten")
	}
	if code := FederationMain(context.Background(), []string{"keygen", "-issuer", "-pub", "x"}, nil, &o, &e); code != 2 {
		t.Fatalf("-issuer with -pub: exit %d", code)
	}
}

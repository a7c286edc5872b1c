package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

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

// TestCLIIssuerKeygenRemoved: `keygen -issuer` made a whole token key on
// one machine; it now refuses, pointing to the DKG, and writes nothing.
func TestCLIIssuerKeygenRemoved(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "issuer.key")
	var o, e bytes.Buffer
	code := FederationMain(context.Background(), []string{"keygen", "-issuer", "-key", key}, nil, &o, &e)
	if code != 2 || !strings.Contains(e.String(), "dkg start") || !strings.Contains(e.String(), "removed") {
		t.Fatalf("exit %d: %s", code, e.String())
	}
	if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key file was written: %v", err)
	}
}

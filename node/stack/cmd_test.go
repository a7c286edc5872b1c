package stack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/leakscan"
	"github.com/signpost-federation/signpost/wasm"

	"github.com/signpost-federation/signpost/wasm/testutil"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

// TestCommandsDocumentWasmCache: `node -h` and `demo -h` list the
// -wasm-cache flag and its environment variable.
func TestCommandsDocumentWasmCache(t *testing.T) {
	for name, main := range map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) int{"node": NodeMain, "demo": DemoMain} {
		var out, errb bytes.Buffer
		code := main(context.Background(), []string{"-h"}, nil, &out, &errb)
		if help := out.String() + errb.String(); code != 0 || !strings.Contains(help, "-"+wasm.CacheFlag) || !strings.Contains(help, "$"+wasm.CacheEnv) {
			t.Errorf("%s -h: exit %d, help does not list -%s and $%s:\n%s", name, code, wasm.CacheFlag, wasm.CacheEnv, help)
		}
	}
}

func TestNodeMainUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := NodeMain(context.Background(), nil, nil, &out, &errb); code != 2 {
		t.Fatalf("no args: %d", code)
	}
	out.Reset()
	if code := NodeMain(context.Background(), []string{"init", "-node-id", "harbour-gp"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "node_id = 'harbour-gp'") {
		t.Fatalf("init: %d %s", code, out.String())
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "node.conf")
	os.WriteFile(p, out.Bytes(), 0o600)
	errb.Reset()
	if code := NodeMain(context.Background(), []string{"--config", p}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "credentials_file") {
		t.Fatalf("missing credentials must be reported: %d %s", code, errb.String())
	}
}

// TestNodeMainLegacyConfig: a config in the old key = value format is read
// for this release with a notice that says how to convert it, and
// `signpost node config-convert` prints TOML that reads back to the same
// configuration without the notice.
func TestNodeMainLegacyConfig(t *testing.T) {
	dir := t.TempDir()
	old, err := os.ReadFile(filepath.Join("..", "testdata", "config", "legacy.conf"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "node.conf")
	os.WriteFile(p, old, 0o600)
	var out, errb bytes.Buffer
	// The enrolment files are missing, so it stops after reading the config.
	if code := NodeMain(context.Background(), []string{"--config", p}, nil, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "old key = value format") || !strings.Contains(errb.String(), "signpost node config-convert "+p) ||
		!strings.Contains(errb.String(), "credentials_file") {
		t.Fatalf("legacy config: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := NodeMain(context.Background(), []string{"config-convert", p}, nil, &out, &errb); code != 0 {
		t.Fatalf("convert: %d %s", code, errb.String())
	}
	toml := filepath.Join(dir, "node.toml")
	os.WriteFile(toml, out.Bytes(), 0o600)
	fromOld, err := loadStackConfig(p, func(string) (string, bool) { return "", false }, io.Discard)
	var notice bytes.Buffer
	fromNew, err2 := loadStackConfig(toml, func(string) (string, bool) { return "", false }, &notice)
	if !errors.Is(err, node.ErrConfig) || !errors.Is(err2, node.ErrConfig) || !reflect.DeepEqual(fromOld.Node, fromNew.Node) || notice.Len() != 0 {
		t.Fatalf("converted config differs or warns: %v / %v / %q", err, err2, notice.String())
	}
	errb.Reset()
	os.WriteFile(p, []byte("node_id = a\nlisten_addr = b\n"), 0o600)
	if code := NodeMain(context.Background(), []string{"config-convert", p}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "line 2: listen_addr: unknown key") {
		t.Fatalf("convert of a bad file: %d %s", code, errb.String())
	}
}

// startTimeout bounds a node's start in the command tests: compiling the
// wasm module cold takes seconds, and many times that under -race.
const startTimeout = 2 * time.Minute

// TestNodeMainRuns runs `signpost node --config` from files made the way
// an operator makes them (authority directory, enrolment, credentials),
// checks it serves, keeps compiled code in its -wasm-cache directory, and
// that SIGINT (context cancellation) stops it cleanly.
func TestNodeMainRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	// The addresses come from the environment, as a deployment's would.
	t.Setenv("SIGNPOST_LISTEN", "127.0.0.1:0")
	t.Setenv("SIGNPOST_GOSSIP_LISTEN", "127.0.0.1:0")
	t.Setenv("SIGNPOST_PEER_LISTEN", "127.0.0.1:0")
	p := operatorFiles(t, t.TempDir(), nil)
	cache := filepath.Join(t.TempDir(), "wasm-cache")
	addr, errb, stop := runNode(t, p, "--"+wasm.CacheFlag, cache)
	testutil.Eventually(t, startTimeout, func() error {
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return fmt.Errorf("readyz: %w; stderr:\n%s", err, errb.String())
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz answered %s; stderr:\n%s", res.Status, errb.String())
		}
		return nil
	})
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if entries, _ := filepath.Glob(filepath.Join(cache, "wazero-*", "*")); len(entries) == 0 {
		t.Errorf("no compiled code in the node's -%s directory", wasm.CacheFlag)
	}
}

// runNode runs `signpost node --config p [flags]` until stop (also called
// at cleanup) and returns the HTTP address it logged and its stderr.
func runNode(t *testing.T, p string, flags ...string) (string, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	errb := new(syncBuffer)
	// The node logs to stderr: the leak scanner reads it with the rest.
	t.Cleanup(func() { testLogs.Write([]byte(errb.String())) })
	done := make(chan int, 1)
	go func() { done <- NodeMain(ctx, append([]string{"--config", p}, flags...), nil, &out, errb) }()
	// stop cancels the node and waits for its exit code, once: the test
	// calls it, and so does the cleanup of a test that failed before, so
	// that the node never outlives its test.
	stop := sync.OnceValue(func() int { cancel(); return <-done })
	t.Cleanup(func() { stop() })
	var addr string
	testutil.Eventually(t, startTimeout, func() error {
		s := errb.String()
		i := strings.Index(s, "addr=")
		if i < 0 {
			return fmt.Errorf("node has not logged its address; stderr:\n%s", s)
		}
		addr = strings.Fields(s[i+5:])[0]
		return nil
	})
	return addr, errb, stop
}

// operatorFiles writes into dir what an operator has before `signpost node`
// first runs (authority key, credentials, gossip key, all 0600, the
// federation's signed key records and this node's key shares) and a config
// from `signpost node init` with replace applied to it, and returns the
// config's path. The caller sets the addresses in the environment. The
// node is the one issuer (1 of 1) of a key per purpose; the keys are dealt
// here, where a federation would run a DKG.
func operatorFiles(t *testing.T, dir string, replace []string) string {
	t.Helper()
	authDir := filepath.Join(dir, "authority")
	if _, err := federation.InitAuthorityDir(authDir, time.Now()); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now().Truncate(time.Second)
	sd, err := federation.EnrolInDir(authDir, federation.Descriptor{NodeID: "harbour-gp", Agency: "Harbour Lane GP", Category: "gp",
		Purposes: []string{"direct-care", "safeguarding"}, PublicKey: pub, NotBefore: now.Add(-time.Minute), Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := federation.WriteCredentials(filepath.Join(dir, "node.pem"), &federation.Credentials{Descriptor: sd, PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{federation.AuthorityPublicFile, federation.GossipKeyFile} {
		b, _ := os.ReadFile(filepath.Join(authDir, f))
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	var recs []*federation.KeyRecord
	shares := filepath.Join(dir, "shares")
	os.Mkdir(shares, 0o700)
	for i, p := range []string{"direct-care", "safeguarding"} {
		d, err := wasmtest.Deal(rand.Reader, p, 1, 1, "harbour-gp")
		if err != nil {
			t.Fatal(err)
		}
		session := dkg.SessionID{byte(i + 1)}
		ks := &dkg.KeySet{Session: session, Purpose: p, Epoch: 1, T: 1, GroupKey: d.KeySet.GroupKey,
			Issuers: []dkg.PublicShare{{NodeID: "harbour-gp", Index: 1, Key: d.KeySet.Shares[0].Key}}}
		rec, err := federation.SignKeyRecordInDir(authDir, ks, now.Add(-time.Minute), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
		share := &dkg.Share{Session: session, Purpose: p, Epoch: 1, NodeID: "harbour-gp", Index: 1, Value: d.Shares[0]}
		if err := federation.WriteShare(filepath.Join(shares, federation.ShareFileName(p, 1, session)), share); err != nil {
			t.Fatal(err)
		}
	}
	if err := federation.WriteKeyRecords(filepath.Join(dir, "keys.pem"), recs); err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	node.WriteDefaultConfig(&conf, "harbour-gp")
	cfg := strings.NewReplacer(
		"authority_key_file = 'authority.pub'", "authority_key_file = '"+federation.AuthorityPublicFile+"'",
		"key_records_file = ''", "key_records_file = 'keys.pem'",
		"shares_dir = ''", "shares_dir = 'shares'",
		"category = 'children-social-care'", "category = 'gp'",
	).Replace(conf.String())
	cfg = strings.NewReplacer(replace...).Replace(cfg)
	p := filepath.Join(dir, "node.toml")
	os.WriteFile(p, []byte(cfg), 0o600)
	return p
}

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

// TestMain runs the tests under the leak scanner (see leakscan.Main), then
// fails the run if a goroutine outlives them (testutil.NoLeaks): every
// stack, agent and server the tests start must be stopped by its owner.
// The commands' compilation cache is off (in memory, once per process),
// so that no test writes into the user's cache directory; a test that
// checks the cache gives its own directory.
func TestMain(m *testing.M) {
	os.Setenv(wasm.CacheEnv, wasm.CacheOff)
	os.Exit(testutil.NoLeaks(leakscan.Main(m)))
}

// testLogs is the run's log sink, scanned for leaks.
var testLogs = leakscan.Logs

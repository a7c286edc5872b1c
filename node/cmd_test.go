package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/wasm"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportFileMapsLines(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", nil)
	var b strings.Builder
	b.WriteString("localId,nhsNumber\n")
	nums := SyntheticNumbers(importChunk + 10)
	for i, n := range nums {
		if i == importChunk+3 {
			n = "9990000013" // wrong check digit, on line importChunk+5 of the file
		}
		b.WriteString("r" + itoa(i) + "," + n + "\n")
	}
	var calls int
	rep, err := ImportFile(context.Background(), http.DefaultClient, a.srv.URL, "op-token", strings.NewReader(b.String()), int64(b.Len()), func(done, total int64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != importChunk+9 || rep.Failed != 1 || rep.Errors[0].Line != importChunk+5 || calls < 2 {
		t.Fatalf("report: %+v calls %d", rep, calls)
	}
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + func() string { return fmtInt(i) }())
}

func fmtInt(i int) string {
	var buf [20]byte
	p := len(buf)
	if i == 0 {
		return "0"
	}
	for i > 0 {
		p--
		buf[p] = byte('0' + i%10)
		i /= 10
	}
	return string(buf[p:])
}

func TestNodeMainUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := NodeMain(context.Background(), nil, nil, &out, &errb); code != 2 {
		t.Fatalf("no args: %d", code)
	}
	out.Reset()
	if code := NodeMain(context.Background(), []string{"init", "-node-id", "harbour-gp"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "node_id = harbour-gp") {
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

// startTimeout bounds a node's start in the command tests: compiling the
// wasm module cold takes seconds, and many times that under -race.
const startTimeout = 2 * time.Minute

// TestNodeMainRuns runs `signpost node --config` from files made the way
// an operator makes them (authority directory, enrolment, credentials),
// checks it serves and that SIGINT (context cancellation) stops it cleanly.
func TestNodeMainRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	dir := t.TempDir()
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
	ik, _ := wasm.GenerateIssuerKey()
	os.WriteFile(filepath.Join(dir, "issuer.key"), ik, 0o600)
	var conf bytes.Buffer
	WriteDefaultConfig(&conf, "harbour-gp")
	cfg := strings.NewReplacer(
		"listen = 127.0.0.1:8080", "listen = 127.0.0.1:0",
		"gossip_listen = 127.0.0.1:7946", "gossip_listen = 127.0.0.1:0",
		"peer_listen = 127.0.0.1:7947", "peer_listen = 127.0.0.1:0",
		"authority_key_file = authority.pub", "authority_key_file = "+federation.AuthorityPublicFile,
		"issuer_key_file =", "issuer_key_file = issuer.key",
		"category = children-social-care", "category = gp",
	).Replace(conf.String())
	p := filepath.Join(dir, "node.conf")
	os.WriteFile(p, []byte(cfg), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	// The node logs to stderr: the leak scanner reads it with the rest.
	t.Cleanup(func() { testLogs.Write([]byte(errb.String())) })
	done := make(chan int)
	go func() { done <- NodeMain(ctx, []string{"--config", p}, nil, &out, &errb) }()
	var addr string
	if err := waitFor(context.Background(), startTimeout, func() bool {
		s := errb.String()
		i := strings.Index(s, "addr=")
		if i < 0 {
			return false
		}
		addr = strings.Fields(s[i+5:])[0]
		return true
	}); err != nil {
		cancel()
		t.Fatalf("node did not start: %s", errb.String())
	}
	if err := waitFor(context.Background(), startTimeout, func() bool {
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}); err != nil {
		t.Fatalf("not ready: %s", errb.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
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

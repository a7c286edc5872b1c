package stack

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// nodeMainQuick runs `signpost node --config p` expecting it to refuse at
// start; a node that starts instead is stopped after a while (exit 0), so
// that the test fails rather than hangs.
func nodeMainQuick(t *testing.T, p string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := NodeMain(ctx, []string{"--config", p}, nil, &out, &errb)
	return code, errb.String()
}

// TestNodeRefusesUnsafePermissions: the node used to start silently with
// its keys at 0644 in a 0777 data directory. Now it refuses, naming the
// file and the command that fixes it, as ssh does.
func TestNodeRefusesUnsafePermissions(t *testing.T) {
	t.Setenv("SIGNPOST_LISTEN", "127.0.0.1:0")
	t.Setenv("SIGNPOST_GOSSIP_LISTEN", "127.0.0.1:0")
	t.Setenv("SIGNPOST_PEER_LISTEN", "127.0.0.1:0")
	for _, tc := range []struct {
		name string
		// spoil makes one thing unsafe in dir and returns the fix the
		// node must print.
		spoil func(t *testing.T, dir string) string
	}{
		{"credentials 0644", chmodFile("node.pem", 0o644)},
		{"gossip key 0640", chmodFile("gossip.key", 0o640)},
		{"key share 0604", func(t *testing.T, dir string) string {
			shares, _ := filepath.Glob(filepath.Join(dir, "shares", "*.share"))
			if len(shares) == 0 {
				t.Fatal("no share file to spoil")
			}
			if err := os.Chmod(shares[0], 0o604); err != nil {
				t.Fatal(err)
			}
			return "chmod 600 " + shares[0]
		}},
		{"data directory 0777", func(t *testing.T, dir string) string {
			data := filepath.Join(dir, "signpost-data")
			os.Mkdir(data, 0o700)
			if err := os.Chmod(data, 0o777); err != nil {
				t.Fatal(err)
			}
			return "chmod go-w " + data
		}},
		{"users file 0644", func(t *testing.T, dir string) string {
			data := filepath.Join(dir, "signpost-data")
			os.Mkdir(data, 0o700)
			users := filepath.Join(data, auth.UsersFileName)
			os.WriteFile(users, []byte(`{"version":1,"users":[],"tokens":[]}`), 0o600)
			if err := os.Chmod(users, 0o644); err != nil {
				t.Fatal(err)
			}
			return "chmod 600 " + users
		}},
		{"objection key 0644", func(t *testing.T, dir string) string {
			data := filepath.Join(dir, "signpost-data")
			os.Mkdir(data, 0o700)
			key := filepath.Join(data, node.ObjectionKeyFile)
			os.WriteFile(key, bytes.Repeat([]byte{1}, 32), 0o600)
			if err := os.Chmod(key, 0o644); err != nil {
				t.Fatal(err)
			}
			return "chmod 600 " + key
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := operatorFiles(t, dir, nil)
			fix := tc.spoil(t, dir)
			code, stderr := nodeMainQuick(t, p)
			if code != 1 || !strings.Contains(stderr, fix) || !strings.Contains(stderr, "group or others") {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr, fix)
			}
			if strings.Contains(stderr, "node serving") {
				t.Fatal("the node served")
			}
		})
	}
}

func chmodFile(name string, mode os.FileMode) func(*testing.T, string) string {
	return func(t *testing.T, dir string) string {
		p := filepath.Join(dir, name)
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return "chmod 600 " + p
	}
}

// TestNodeRefusesPlainHTTPBeyondLoopback: `listen = 0.0.0.0:…` without TLS
// used to serve plain HTTP without a word; now it is refused, saying what
// to set, unless insecure_http = true, which is logged at start.
func TestNodeRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	t.Setenv("SIGNPOST_LISTEN", "0.0.0.0:0")
	t.Setenv("SIGNPOST_GOSSIP_LISTEN", "127.0.0.1:0")
	t.Setenv("SIGNPOST_PEER_LISTEN", "127.0.0.1:0")
	p := operatorFiles(t, t.TempDir(), nil)
	code, stderr := nodeMainQuick(t, p)
	if code != 1 || !strings.Contains(stderr, "not a loopback address") || !strings.Contains(stderr, "tls_cert_file") || !strings.Contains(stderr, "insecure_http = true") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}

	// With insecure_http the configuration is accepted, and the assembly
	// warns (checked without serving on every interface).
	p = operatorFiles(t, t.TempDir(), []string{"insecure_http = false", "insecure_http = true"})
	sc, err := loadStackConfig(p, os.LookupEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	sc.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := newAssembly(sc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "insecure_http is set") {
		t.Errorf("insecure_http not logged at start: %q", logs.String())
	}
}

// TestNodeServesTLS: given a certificate and key, the node serves HTTPS
// itself (not plain HTTP), and its session cookie is Secure. A key file
// others can read is refused.
func TestNodeServesTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	t.Setenv("SIGNPOST_LISTEN", "127.0.0.1:0")
	t.Setenv("SIGNPOST_GOSSIP_LISTEN", "127.0.0.1:0")
	t.Setenv("SIGNPOST_PEER_LISTEN", "127.0.0.1:0")
	dir := t.TempDir()
	pool := writeCert(t, dir)
	p := operatorFiles(t, dir, []string{"tls_cert_file = ''", "tls_cert_file = 'tls.crt'", "tls_key_file = ''", "tls_key_file = 'tls.key'"})

	os.Chmod(filepath.Join(dir, "tls.key"), 0o640)
	if code, stderr := nodeMainQuick(t, p); code != 1 || !strings.Contains(stderr, "chmod 600 "+filepath.Join(dir, "tls.key")) {
		t.Fatalf("group-readable TLS key: exit %d, stderr:\n%s", code, stderr)
	}
	os.Chmod(filepath.Join(dir, "tls.key"), 0o600)

	data := filepath.Join(dir, "signpost-data")
	os.Mkdir(data, 0o700)
	st, err := auth.OpenStore(filepath.Join(data, auth.UsersFileName), auth.TestArgon2Params, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddUser("alice", auth.RolePractitioner, []byte("correct horse battery")); err != nil {
		t.Fatal(err)
	}
	addr, errb, stop := runNode(t, p)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	testutil.Eventually(t, startTimeout, func() error {
		res, err := client.Get("https://" + addr + "/healthz")
		if err != nil {
			return fmt.Errorf("healthz over TLS: %w; stderr:\n%s", err, errb.String())
		}
		res.Body.Close()
		return nil
	})
	// Plain HTTP on the TLS port is told, in the API's JSON shape, to use
	// https; a request net/http cannot parse gets that shape over TLS too.
	if res, err := http.Get("http://" + addr + "/healthz"); err != nil {
		t.Errorf("plain HTTP on the TLS port: %v, want a 400 saying to use https", err)
	} else {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"code":"bad_request"`) || !strings.Contains(string(body), "https") {
			t.Errorf("plain HTTP on the TLS port: %d %s", res.StatusCode, body)
		}
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /v1/records/%%zz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	raw, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.HasPrefix(string(raw), "HTTP/1.1 400 ") || !strings.Contains(string(raw), "application/json") || !strings.Contains(string(raw), `"code":"bad_request"`) {
		t.Errorf("a bad escape over TLS: %q, want the JSON error shape", raw)
	}
	res, err := client.Post("https://"+addr+"/v1/session", "application/json", strings.NewReader(`{"username":"alice","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(res.Cookies()) != 1 || !res.Cookies()[0].Secure {
		t.Errorf("sign-in over TLS: %d, cookies %v; want one Secure cookie", res.StatusCode, res.Cookies())
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 (tls.crt) and
// its key (tls.key, 0600) into dir and returns a pool that trusts it.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "node.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(
		os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644),
		os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600),
	); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

package stack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/audit/audittest"
)

// auditTestStack is a node's configuration with fresh credentials; only the
// steps before the audit log opens run when the log is refused.
func auditTestStack(t *testing.T, dir string) (StackConfig, ed25519.PrivateKey) {
	t.Helper()
	a, err := federation.GenerateAuthority()
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now().Truncate(time.Second)
	sd, err := a.Enrol(federation.Descriptor{NodeID: "harbour-gp", Agency: "Harbour Lane GP", Category: "gp",
		Purposes: []string{"safeguarding"}, PublicKey: pub, NotBefore: now.Add(-time.Minute), Expires: now.Add(time.Hour), Serial: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.Category, cfg.DataDir, cfg.Purposes = "harbour-gp", "gp", dir, []string{"safeguarding"}
	return StackConfig{Node: cfg, AuthorityKey: a.PublicKey(), Credentials: &federation.Credentials{Descriptor: sd, PrivateKey: priv},
		Logger: slog.New(slog.NewTextHandler(testLogs, nil))}, priv
}

// TestStartRefusesTamperedAuditLog: the node refuses to start on every
// tampering of the shared table, naming the line and pointing to the
// recovery; on its intact log, and after a torn final line (a crash
// mid-append), it opens, and records the repair in the log.
func TestStartRefusesTamperedAuditLog(t *testing.T) {
	base := t.TempDir()
	sc, key := auditTestStack(t, filepath.Join(base, "intact"))
	os.MkdirAll(sc.Node.DataDir, 0o700)
	path, head := audittest.WriteLog(t, sc.Node.DataDir, key, 8)
	intact, _ := os.ReadFile(path)
	headFile, _ := os.ReadFile(path + ".head")
	pubFile, _ := os.ReadFile(filepath.Join(sc.Node.DataDir, audit.PublicKeyFileName))

	l, err := openAudit(sc.Node.DataDir, key, sc.Logger)
	if err != nil {
		t.Fatalf("intact log refused: %v", err)
	}
	if l.Head().Root != head.Root || l.CutAtOpen() != 0 {
		t.Fatalf("intact log opened at %+v, cut %d", l.Head(), l.CutAtOpen())
	}
	l.Close()

	// A crash mid-append: the torn line is cut, and the cut is audited.
	os.WriteFile(path, append(bytes.Clone(intact), `{"i":8,"event":{"ti`...), 0o600)
	os.WriteFile(path+".head", headFile, 0o600)
	l, err = openAudit(sc.Node.DataDir, key, sc.Logger)
	if err != nil {
		t.Fatalf("torn final line refused: %v", err)
	}
	if l.CutAtOpen() != 19 || l.Head().Size != 9 {
		t.Fatalf("torn line: cut %d, head %+v", l.CutAtOpen(), l.Head())
	}
	l.Close()
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b[len(intact):]), `"action":"audit-repair","count":19`) {
		t.Fatalf("the repair is not audited: %s", b[len(intact):])
	}

	for i, c := range audittest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			sc := sc
			sc.Node.DataDir = filepath.Join(base, "case", string(rune('a'+i)))
			os.MkdirAll(sc.Node.DataDir, 0o700)
			os.WriteFile(filepath.Join(sc.Node.DataDir, audit.FileName), c.Apply(t, bytes.Clone(intact)), 0o600)
			os.WriteFile(filepath.Join(sc.Node.DataDir, audit.HeadFileName), headFile, 0o600)
			os.WriteFile(filepath.Join(sc.Node.DataDir, audit.PublicKeyFileName), pubFile, 0o644)
			s, err := StartStack(context.Background(), sc)
			if err == nil {
				s.Shutdown(context.Background())
				t.Fatal("the node started on a tampered audit log")
			}
			if !errors.Is(err, ErrAuditLog) || !strings.Contains(err.Error(), "docs/AUDIT.md") {
				t.Fatalf("error does not say what to do: %v", err)
			}
			audittest.Refused(t, err, c.Want)
		})
	}

	// Another node's key (or a rotated one): refused before any line is read.
	sc2, _ := auditTestStack(t, sc.Node.DataDir)
	sc2.Node.DataDir = sc.Node.DataDir
	if _, err := StartStack(context.Background(), sc2); !errors.Is(err, audit.ErrKeyMismatch) || !errors.Is(err, ErrAuditLog) {
		t.Fatalf("another key: %v", err)
	}
}

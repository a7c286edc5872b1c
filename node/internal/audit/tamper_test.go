package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/audit/audittest"
)

var nodeKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// TestTamperingsRefused: every tampering of the shared table is refused by
// Verify with the node's public key and saved head (what `signpost audit
// verify` does by default) and by Open with the node's key (what the node
// does at start), each naming a line; the intact log passes both.
func TestTamperingsRefused(t *testing.T) {
	dir := t.TempDir()
	path, head := audittest.WriteLog(t, dir, nodeKey, 8)
	intact, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub := nodeKey.Public().(ed25519.PublicKey)
	saved, err := audit.ReadHeadFile(path+".head", pub)
	if err != nil || saved == nil || saved.Size != head.Size || saved.Root != head.Root || !bytes.Equal(saved.Sig, head.Sig) {
		t.Fatalf("saved head %+v %v, want %+v", saved, err, head)
	}
	check := func(t *testing.T, log []byte) (verifyErr, openErr error) {
		if _, err := audit.VerifyWith(bytes.NewReader(log), audit.VerifyOptions{PublicKey: pub, Trusted: saved}); err != nil {
			verifyErr = err
		}
		cdir := t.TempDir()
		cpath := filepath.Join(cdir, audit.FileName)
		os.WriteFile(cpath, log, 0o600)
		os.WriteFile(cpath+".head", mustRead(t, path+".head"), 0o600)
		l, err := audit.Open(cpath, audit.Config{Signer: nodeKey, NoSync: true})
		if err == nil {
			l.Close()
		}
		return verifyErr, err
	}
	if v, o := check(t, intact); v != nil || o != nil {
		t.Fatalf("intact log: verify %v, open %v", v, o)
	}
	for _, c := range audittest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			tampered := c.Apply(t, bytes.Clone(intact))
			if bytes.Equal(tampered, intact) {
				t.Fatal("the case changed nothing")
			}
			v, o := check(t, tampered)
			audittest.Refused(t, v, c.Want)
			audittest.Refused(t, o, c.Want)
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

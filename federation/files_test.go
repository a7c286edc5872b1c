package federation

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAuthorityDirLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "authority")
	a, err := InitAuthorityDir(dir, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InitAuthorityDir(dir, testNow); err == nil {
		t.Fatal("second init overwrote the authority")
	}
	for _, name := range []string{AuthorityKeyFile, GossipKeyFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	pub, err := LoadAuthorityPublicKey(filepath.Join(dir, AuthorityPublicFile))
	if err != nil || !pub.Equal(a.PublicKey()) {
		t.Fatalf("public key: %v", err)
	}
	keys, err := LoadGossipKeys(filepath.Join(dir, GossipKeyFile))
	if err != nil || len(keys) != 1 || len(keys[0]) != GossipKeySize {
		t.Fatalf("gossip keys: %v", err)
	}
	d, priv := testDescriptor(t, "node-1")
	sd1, err := EnrolInDir(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	sd2, err := EnrolInDir(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	if sd1.Descriptor.Serial != 1 || sd2.Descriptor.Serial != 2 {
		t.Fatalf("serials %d, %d; want 1, 2", sd1.Descriptor.Serial, sd2.Descriptor.Serial)
	}
	cred := filepath.Join(t.TempDir(), "node-1.pem")
	if err := WriteCredentials(cred, &Credentials{Descriptor: sd2, PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCredentials(cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Descriptor.Verify(pub, testNow, nil); err != nil {
		t.Fatal(err)
	}
	rl, err := RevokeInDir(dir, Revocation{NodeID: "node-1", Serial: 1}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadRevocationList(filepath.Join(dir, RevocationsFile), pub)
	if err != nil {
		t.Fatal(err)
	}
	if rl.Version != 2 || loaded.Version != 2 || !loaded.Revoked("node-1", 1) || loaded.Revoked("node-1", 2) {
		t.Fatalf("revocation list %+v", loaded)
	}
}

func TestLoadCredentialsRefusesMismatchedKey(t *testing.T) {
	a := mustAuthority(t)
	d, _ := testDescriptor(t, "node-1")
	_, otherPriv := testDescriptor(t, "node-2")
	sd, err := a.Enrol(d)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.pem")
	if err := WriteCredentials(path, &Credentials{Descriptor: sd, PrivateKey: otherPriv}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCredentials(path); err == nil {
		t.Fatal("mismatched key accepted")
	}
}

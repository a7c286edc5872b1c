package federation

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLISignKeyAndKeys: sign-key turns a DKG result into a signed record
// with the authority directory's next serial; keys prints it (checked with
// -authority) and never prints a share.
func TestCLISignKeyAndKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "authority")
	runCLI(t, "init", "-dir", dir)
	ks, shares := localDKG(t, 2, 3)
	work := t.TempDir()
	result := filepath.Join(work, "result.pem")
	if err := WriteDKGResult(result, ks); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "rec.pem")
	runCLI(t, "sign-key", "-dir", dir, "-out", out, "-retire-at", "2030-01-01T00:00:00Z", result)
	out2 := filepath.Join(work, "rec2.pem")
	runCLI(t, "sign-key", result, "-dir", dir, "-out", out2)
	pub, err := LoadAuthorityPublicKey(filepath.Join(dir, AuthorityPublicFile))
	if err != nil {
		t.Fatal(err)
	}
	r1, err := LoadKeyRecords(out, pub)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := LoadKeyRecords(out2, pub)
	if err != nil {
		t.Fatal(err)
	}
	if r2[0].Serial <= r1[0].Serial || r1[0].RetireAt.Year() != 2030 {
		t.Fatalf("serials %d then %d, retire %v", r1[0].Serial, r2[0].Serial, r1[0].RetireAt)
	}
	got := runCLI(t, "keys", "-authority", filepath.Join(dir, AuthorityPublicFile), out)
	for _, want := range []string{"safeguarding epoch 1: t = 2 of n = 3", "node-1", "node-2", "node-3", "every signature checked", "retire at"} {
		if !strings.Contains(got, want) {
			t.Fatalf("keys output lacks %q:\n%s", want, got)
		}
	}
	if got := runCLI(t, "keys", out); !strings.Contains(got, "signatures not checked") {
		t.Fatalf("unchecked keys output:\n%s", got)
	}
	for _, sh := range shares {
		for _, form := range []string{hex.EncodeToString(sh.Value), base64.StdEncoding.EncodeToString(sh.Value)} {
			if strings.Contains(got, form) {
				t.Fatal("keys printed a share")
			}
		}
	}
	// Another authority's key refuses the file; usage errors exit 2.
	other := filepath.Join(t.TempDir(), "other")
	runCLI(t, "init", "-dir", other)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"keys", "-authority", filepath.Join(other, AuthorityPublicFile), out}, 1},
		{[]string{"keys"}, 2},
		{[]string{"keys", out, out}, 2},
		{[]string{"sign-key", result}, 2},
		{[]string{"sign-key", "-dir", dir, "-not-before", "yesterday", result}, 2},
		{[]string{"sign-key", "-dir", dir, out}, 1},
	} {
		var o, e bytes.Buffer
		if code := FederationMain(context.Background(), tc.args, nil, &o, &e); code != tc.want {
			t.Fatalf("%v: exit %d, want %d (%s)", tc.args, code, tc.want, e.String())
		}
	}
}

package admin

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/audit/audittest"
)

// TestAuditVerifyTamperings: `signpost audit verify --data DIR`, with no
// other flag, refuses every tampering of the shared table (naming the line),
// and passes the intact log: the node's public key and saved head are found
// in the data directory.
func TestAuditVerifyTamperings(t *testing.T) {
	dir := t.TempDir()
	path, head := audittest.WriteLog(t, dir, nodeKey, 8)
	intact, _ := os.ReadFile(path)
	code, out, errs := run(AuditMain, "", "verify", "--data", dir)
	if code != 0 || !strings.Contains(out, "ok: 8 events, root "+head.Root.String()) || !strings.Contains(out, "signed by") || !strings.Contains(out, "saved head: size 8") {
		t.Fatalf("intact: %d %q %q", code, out, errs)
	}
	for _, c := range audittest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			os.WriteFile(path, c.Apply(t, bytes.Clone(intact)), 0o600)
			t.Cleanup(func() { os.WriteFile(path, intact, 0o600) })
			code, out, errs := run(AuditMain, "", "verify", "--data", dir)
			if code != 1 || out != "" || !strings.Contains(errs, "line ") {
				t.Fatalf("got %d %q %q, want exit 1 naming a line", code, out, errs)
			}
		})
	}
	// The one way past the signatures is explicit, and loud; it still
	// catches what needs no key (here, a line cut from the end).
	os.WriteFile(path, intact[:bytes.LastIndexByte(intact[:len(intact)-1], '\n')+1], 0o600)
	code, _, errs = run(AuditMain, "", "verify", "--data", dir, "--no-signatures")
	if code != 1 || !strings.Contains(errs, "WARNING") || !strings.Contains(errs, audit.ErrTruncated.Error()) {
		t.Fatalf("--no-signatures on a truncated log: %d %q", code, errs)
	}
}

package stack

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckDataDir: what the data directory may and may not hold, mode by
// mode; every refusal names the path and the fix.
func TestCheckDataDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string // relative to the data dir; "" for the directory itself
		mode os.FileMode
		fix  string // "" if accepted
	}{
		{"fresh", "", 0o700, ""},
		{"group-readable dir", "", 0o750, ""},
		{"world-writable dir", "", 0o777, "chmod go-w"},
		{"group-writable dir", "", 0o770, "chmod go-w"},
		{"private key", "holder.key", 0o600, ""},
		{"readable key", "holder.key", 0o644, "chmod 600"},
		{"group-readable db", "records.db", 0o640, "chmod 600"},
		{"public key", "audit.log.pub", 0o644, ""},
		{"descriptors", "descriptors.pem", 0o644, ""},
		{"writable public key", "audit.log.pub", 0o666, "chmod 600"},
		{"writable subdirectory", "replica/", 0o777, "chmod go-w"},
		{"file in a subdirectory", "replica/x.db", 0o644, "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			target := dir
			if tc.file != "" {
				target = filepath.Join(dir, tc.file)
				os.MkdirAll(filepath.Dir(target), 0o700)
				if strings.HasSuffix(tc.file, "/") {
					os.Mkdir(target, 0o700)
				} else if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(target, tc.mode); err != nil {
				t.Fatal(err)
			}
			err := checkDataDir(dir)
			if tc.fix == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUnsafePermissions) || !strings.Contains(err.Error(), tc.fix+" "+filepath.Clean(target)) {
				t.Fatalf("got %v, want ErrUnsafePermissions with %q", err, tc.fix+" "+target)
			}
		})
	}
}

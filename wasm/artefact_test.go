package wasm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestArtefactIsFresh rebuilds the module from guest/ with the pinned
// toolchain and the flags of the go:generate line in build.go, and fails if
// the committed web/signpost.wasm differs. Fix a failure with
// `go generate ./wasm` and commit the result.
func TestArtefactIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds the module (tens of seconds on a cold cache); skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the artefact test needs the go command:", err)
	}
	out := filepath.Join(t.TempDir(), "signpost.wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./guest")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=go1.26.8", "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, Module()) {
		t.Fatalf("web/signpost.wasm (%d bytes) differs from a fresh build of guest/ (%d bytes): run `go generate ./wasm` and commit it", len(Module()), len(fresh))
	}
}

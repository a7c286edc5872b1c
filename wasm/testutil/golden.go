package testutil

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is the one flag that rewrites golden files, in every package:
// go test ./sim/ -update.
var update = flag.Bool("update", false, "rewrite the golden files under testdata instead of comparing with them")

// Updating reports whether -update was given, for a test that needs to
// do more than Golden does when it rewrites its files.
func Updating() bool { return *update }

// Golden compares got with the golden file at path (relative to the
// package directory, normally under testdata). With -update it writes got
// to path instead, creating directories as needed, and the comparison
// passes. A mismatch fails t with both texts and how to regenerate.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run the test with -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

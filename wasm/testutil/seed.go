package testutil

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// SeedEnv names the environment variable that replays a seed, for runs
// where passing a test flag is awkward (go test ./... over packages that
// do not all import this one).
const SeedEnv = "SIGNPOST_SEED"

var seedFlag = flag.Uint64("seed", 0, "seed for randomised tests (0: a fresh one; also $"+SeedEnv+")")

// Seed returns the seed for a randomised test: -seed N if given, else
// $SIGNPOST_SEED, else a fresh random one. It logs the seed, and if the
// test fails it logs the command that replays exactly this test with
// this seed.
func Seed(t testing.TB) uint64 {
	t.Helper()
	s, err := seedFrom(*seedFlag, os.Getenv(SeedEnv))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d", s)
	cmd := ReplayCommand(t.Name(), s)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with: %s", cmd)
		}
	})
	return s
}

// seedFrom picks the flag's seed, then the environment's, then a fresh one.
func seedFrom(flagSeed uint64, env string) (uint64, error) {
	if flagSeed != 0 {
		return flagSeed, nil
	}
	if env != "" {
		s, err := strconv.ParseUint(env, 10, 64)
		if err != nil || s == 0 {
			return 0, fmt.Errorf("testutil: $%s=%q is not a positive integer", SeedEnv, env)
		}
		return s, nil
	}
	for {
		if s := rand.Uint64(); s != 0 { // 0 means "none given"
			return s, nil
		}
	}
}

// ReplayCommand is the go test command line, run from the module root,
// that reruns the test named name (as t.Name() gives it) in the current
// package with the given seed.
func ReplayCommand(name string, seed uint64) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return fmt.Sprintf("go test -count=1 -run '%s' %s -seed %d", strings.Join(parts, "/"), packageDir(), seed)
}

// packageDir is the current package's directory relative to the module
// root ("./federation/protocol"): go test runs a package's tests in its
// own directory.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	root, err := moduleRoot(wd)
	if err != nil {
		return wd
	}
	rel, err := filepath.Rel(root, wd)
	if err != nil || rel == "." {
		return "."
	}
	return "./" + filepath.ToSlash(rel)
}

func moduleRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("testutil: no go.mod above " + dir)
		}
		d = parent
	}
}

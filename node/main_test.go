package node

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/signpost-federation/signpost/node/internal/leakscan"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestMain runs the tests under the leak scanner (see leakscan.Main): a
// log line or an HTTP answer of the run that carries an NHS number, a
// token or any secret the tests created fails the run. Then a goroutine
// that outlives the tests (a watcher, a coalescer, a server's) fails it
// too (testutil.NoLeaks).
func TestMain(m *testing.M) { os.Exit(testutil.NoLeaks(leakscan.Main(m))) }

// The run's scanner, log sink and recorded answers.
var (
	leaks    = leakscan.Leaks
	testLogs = leakscan.Logs
	recorded = leakscan.Recorded
)

// TestLeakScannerFailsTheRun runs this test binary again with a seal key
// planted in a log line and an answer: TestMain's scanner must fail that
// run, name what leaked, and not print it.
func TestLeakScannerFailsTheRun(t *testing.T) {
	if os.Getenv(leakscan.PlantEnv) != "" {
		t.Skip("already the planted run")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), leakscan.PlantEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("the planted run did not fail: %v\n%s", err, out)
	}
	for _, want := range []string{"leak scanner: a log line contains a seal key", "leak scanner: the answer to POST /v1/lookup contains a seal key"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if regexp.MustCompile(`[0-9a-f]{64}|[A-Za-z0-9+/]{43}=`).Match(out) {
		t.Errorf("the scanner printed the key:\n%s", out)
	}
}

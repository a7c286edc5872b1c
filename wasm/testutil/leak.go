package testutil

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakGrace is how long FindLeaks lets goroutines that are already on
// their way out finish: a closed listener's accept loop, a memberlist
// node's timers, a transport's idle connection. It bounds the wait, it is
// not a speed goal; goleak's own retries (under half a second) are too
// short for a loaded CI machine running -race.
const leakGrace = 20 * time.Second

// FindLeaks returns an error naming every goroutine still running, other
// than the caller's and the testing package's, after giving them
// leakGrace to exit. TestMain calls it after m.Run, once every test has
// stopped what it started. opts are goleak's, for a package that must
// ignore a goroutine a library owns for the life of the process (none
// does today); say why beside the option.
func FindLeaks(opts ...goleak.Option) error {
	return findLeaks(leakGrace, opts...)
}

func findLeaks(grace time.Duration, opts ...goleak.Option) error {
	return poll(grace, func() error { return goleak.Find(opts...) })
}

// VerifyNoLeaks is a TestMain for a package whose code or tests start
// goroutines:
//
//	func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }
//
// It runs the tests and, if they passed, fails the run when a goroutine
// outlives them (see FindLeaks).
func VerifyNoLeaks(m *testing.M, opts ...goleak.Option) {
	os.Exit(NoLeaks(m.Run(), opts...))
}

// NoLeaks is VerifyNoLeaks for a TestMain that runs the tests through
// another wrapper: given the run's exit code, it returns it unchanged
// unless the run passed and a goroutine outlived it, which it reports on
// stderr and turns into exit code 1:
//
//	func TestMain(m *testing.M) { os.Exit(testutil.NoLeaks(leakscan.Main(m))) }
func NoLeaks(code int, opts ...goleak.Option) int {
	if code != 0 {
		return code // the failure says more than a leak would
	}
	if err := FindLeaks(opts...); err != nil {
		fmt.Fprintf(os.Stderr, "goroutine leak after the tests passed: %v\n", err)
		return 1
	}
	return 0
}

// VerifyNone fails t unless every goroutine but the test's own has
// exited within leakGrace. A test calls it to prove that one call (Leave,
// Shutdown, cancelling a run) stopped everything it started, before the
// test's cleanups could stop it instead; TestMain's check catches
// everything else. It sees every goroutine in the process,
// so it must not run beside parallel tests.
func VerifyNone(t testing.TB, opts ...goleak.Option) {
	t.Helper()
	if err := FindLeaks(opts...); err != nil {
		t.Fatal(err)
	}
}

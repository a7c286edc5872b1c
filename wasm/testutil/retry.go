package testutil

import (
	"fmt"
	"testing"
	"time"
)

// pollEvery is how often Eventually re-checks. Short, because a condition
// met between polls is seen late by at most this much; the conditions the
// tests poll are cheap (a map read, a loopback request).
const pollEvery = 20 * time.Millisecond

// Eventually calls cond until it returns nil, and fails t (with
// t.Fatalf, so call it from the test's goroutine) if it has not done so
// within timeout. The failure names the timeout, the number of attempts
// and cond's last error, so the error should say what was still missing
// ("node-2 lacks entry …", not "false").
//
// Deadlines are generous on purpose: they bound a hung test, they do not
// measure speed, and CI is a busy 2-core machine.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatal(err)
	}
}

// poll is Eventually without the testing.TB, so that FindLeaks (which runs
// in TestMain, where there is no T) waits the same way.
func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for attempt := 1; ; attempt++ {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %v (%d attempts): %w", timeout, attempt, err)
		}
		<-tick.C
	}
}

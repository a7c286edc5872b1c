package testutil

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where the browser tests find headless Chromium (Debian's
// chromium package, which .ci/run installs).
const ChromiumPath = "/usr/bin/chromium"

// chromiumStarts is how many times Chromium is started before a test
// fails: on a loaded machine a start now and then fails before Chromium
// prints its DevTools address ("chrome failed to start"), which says
// nothing about the code under test.
const chromiumStarts = 3

// Chromium starts headless Chromium for a browser test and returns the
// browser's context: the browser runs until the test's cleanup cancels it;
// derive per-step deadlines from it, not the browser itself. Without
// Chromium the test is skipped with a message — or fails when CI=true, so
// that a missing install cannot pass silently. A failed start is retried
// with a fresh profile and logged. extra adds allocator options (a window
// size).
func Chromium(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s and CI=true", ChromiumPath)
		}
		t.Skipf("chromium not found at %s: browser test skipped", ChromiumPath)
	}
	var err error
	for attempt := 1; attempt <= chromiumStarts; attempt++ {
		opts := append([]chromedp.ExecAllocatorOption{
			chromedp.ExecPath(ChromiumPath),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.UserDataDir(t.TempDir()),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
		}, extra...)
		actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelB := chromedp.NewContext(actx)
		// The first action starts the browser, which lives as long as the
		// context it was started with: start it on bctx itself.
		if err = chromedp.Do(bctx); err == nil {
			t.Cleanup(func() { cancelB(); cancelA() })
			return bctx
		}
		cancelB()
		cancelA()
		t.Logf("chromium start %d of %d failed: %v", attempt, chromiumStarts, err)
	}
	t.Fatalf("chromium did not start: %v", err)
	return nil
}

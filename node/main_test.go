package node

import (
	"fmt"
	"os"
	"regexp"
	"testing"
)

// TestMain runs every test, then scans all the log lines and API responses
// the suite produced: none may contain an NHS number from the test range
// (the log-scanner acceptance check). Responses here are what a third party
// sees; tests that legitimately echo nothing are the norm, so any hit fails.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leak := scanForNumbers(testLogs.String()); leak != "" {
			fmt.Fprintf(os.Stderr, "log scanner: a log line contains an NHS number: %q\n", leak)
			code = 1
		}
		if leak := scanForNumbers(thirdParty.String()); leak != "" {
			fmt.Fprintf(os.Stderr, "log scanner: an API response contains an NHS number: %q\n", leak)
			code = 1
		}
	}
	os.Exit(code)
}

var numberRe = regexp.MustCompile(`999[ -]?\d{3}[ -]?\d{4}`)

func scanForNumbers(s string) string {
	return numberRe.FindString(s)
}

package node

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
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
		if strings.Contains(testLogs.String(), "spt_") {
			fmt.Fprintln(os.Stderr, "log scanner: a log line contains an API token")
			code = 1
		}
		logs, responses := testLogs.String(), thirdParty.String()
		secretsMu.Lock()
		for _, k := range secrets {
			for _, enc := range []string{base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), hex.EncodeToString(k)} {
				if strings.Contains(logs, enc) || strings.Contains(responses, enc) {
					fmt.Fprintln(os.Stderr, "log scanner: a seal key appears in a log line or API response")
					code = 1
				}
			}
		}
		secretsMu.Unlock()
	}
	os.Exit(code)
}

var numberRe = regexp.MustCompile(`999[ -]?\d{3}[ -]?\d{4}`)

func scanForNumbers(s string) string {
	return numberRe.FindString(s)
}

// secrets are the seal keys the tests' tokenizers produced.
var (
	secretsMu sync.Mutex
	secrets   [][]byte
)

func noteSecret(k []byte) {
	secretsMu.Lock()
	if len(secrets) < 10000 {
		secrets = append(secrets, append([]byte(nil), k...))
	}
	secretsMu.Unlock()
}

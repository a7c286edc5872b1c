package testutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { VerifyNoLeaks(m) }

// recorder is a testing.TB that records failures instead of stopping the
// test, so the helpers' failure paths can be checked.
type recorder struct {
	testing.TB
	failed bool
	msgs   []string
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.failed = true; r.msgs = append(r.msgs, fmt.Sprint(args...)) }
func (r *recorder) Fatalf(f string, args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(f, args...))
}
func (r *recorder) Errorf(f string, args ...any) {
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(f, args...))
}
func (r *recorder) text() string { return strings.Join(r.msgs, "\n") }

func TestPoll(t *testing.T) {
	t.Run("met after a few attempts", func(t *testing.T) {
		calls := 0
		err := poll(time.Minute, func() error {
			if calls++; calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
		}
	})
	t.Run("deadline names the last error", func(t *testing.T) {
		calls := 0
		err := poll(0, func() error { calls++; return fmt.Errorf("node-%d lacks the entry", calls) })
		if err == nil {
			t.Fatal("poll with a passed deadline succeeded")
		}
		if want := "node-1 lacks the entry"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "1 attempts") {
			t.Errorf("error %q, want the last error %q and the attempt count", err, want)
		}
	})
}

func TestEventuallyFailsWithTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	Eventually(r, 0, func() error { return errors.New("replica has 3 of 4 entries") })
	if !r.failed || !strings.Contains(r.text(), "replica has 3 of 4 entries") {
		t.Errorf("failed=%v, message %q", r.failed, r.text())
	}
	r = &recorder{TB: t}
	Eventually(r, time.Minute, func() error { return nil })
	if r.failed {
		t.Errorf("a met condition failed the test: %q", r.text())
	}
}

func TestSeedFrom(t *testing.T) {
	tests := []struct {
		name    string
		flag    uint64
		env     string
		want    uint64 // 0: any non-zero
		wantErr bool
	}{
		{name: "flag wins", flag: 42, env: "7", want: 42},
		{name: "environment", env: "7", want: 7},
		{name: "fresh", want: 0},
		{name: "bad environment", env: "seven", wantErr: true},
		{name: "zero environment", env: "0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seedFrom(tt.flag, tt.env)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if got == 0 || (tt.want != 0 && got != tt.want) {
				t.Errorf("seed %d, want %d (0: any non-zero)", got, tt.want)
			}
		})
	}
}

func TestReplayCommand(t *testing.T) {
	got := ReplayCommand("TestProperty/schedule_(3)", 99)
	want := `go test -count=1 -run '^TestProperty$/^schedule_\(3\)$' ./wasm/testutil -seed 99`
	if got != want {
		t.Fatalf("replay command\n got %s\nwant %s", got, want)
	}
	// The -run pattern selects the test it names and not its neighbours.
	pat := regexp.MustCompile(`\^schedule_\\\(3\\\)\$`)
	if !pat.MatchString(got) {
		t.Errorf("pattern not quoted: %s", got)
	}
	sub := regexp.MustCompile(`^schedule_\(3\)$`)
	if !sub.MatchString("schedule_(3)") || sub.MatchString("schedule_(3)x") {
		t.Error("the quoted subtest pattern does not select exactly its test")
	}
}

func TestSeedPrintsReplayOnFailure(t *testing.T) {
	for _, failed := range []bool{false, true} {
		var logged []string
		Seed(&logRecorder{TB: t, logs: &logged, failed: failed})
		if len(logged) == 0 || !strings.HasPrefix(logged[0], "seed ") {
			t.Fatalf("logged %q, want the seed first", logged)
		}
		seed := strings.TrimPrefix(logged[0], "seed ")
		replayed := len(logged) == 2 && strings.Contains(logged[1], "-run '^TestSeedPrintsReplayOnFailure$' ./wasm/testutil -seed "+seed)
		if failed != replayed || len(logged) > 2 {
			t.Errorf("failed=%v: logged %q", failed, logged)
		}
	}
}

// logRecorder records logs and runs cleanups at once, as if the test had
// ended with the given outcome.
type logRecorder struct {
	testing.TB
	logs   *[]string
	failed bool
}

func (r *logRecorder) Helper()                    {}
func (r *logRecorder) Logf(f string, args ...any) { *r.logs = append(*r.logs, fmt.Sprintf(f, args...)) }
func (r *logRecorder) Failed() bool               { return r.failed }
func (r *logRecorder) Cleanup(f func())           { f() }

func TestGolden(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.golden")
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	Golden(r, path, []byte("a\nb\n"))
	if r.failed {
		t.Errorf("equal output failed: %s", r.text())
	}
	r = &recorder{TB: t}
	Golden(r, path, []byte("a\nc\n"))
	if !r.failed || !strings.Contains(r.text(), "-update") {
		t.Errorf("different output: failed=%v %q", r.failed, r.text())
	}
	r = &recorder{TB: t}
	Golden(r, filepath.Join(dir, "missing.golden"), []byte("x"))
	if !r.failed || !strings.Contains(r.text(), "-update to create") {
		t.Errorf("missing file: failed=%v %q", r.failed, r.text())
	}
}

func TestFindLeaksSeesAStuckGoroutine(t *testing.T) {
	stop := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		<-stop
	}()
	err := findLeaks(0)
	close(stop)
	<-exited
	if err == nil || !strings.Contains(err.Error(), "TestFindLeaksSeesAStuckGoroutine") {
		t.Fatalf("leak not reported: %v", err)
	}
	if err := findLeaks(time.Minute); err != nil {
		t.Fatalf("after the goroutine exited: %v", err)
	}
}

func TestNoLeaksKeepsAFailingCode(t *testing.T) {
	if got := NoLeaks(3); got != 3 {
		t.Errorf("NoLeaks(3) = %d: a failed run's code must pass through unchanged", got)
	}
	if got := NoLeaks(0); got != 0 {
		t.Errorf("NoLeaks(0) = %d with nothing running", got)
	}
}

package locator

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const crashChildEnv = "SIGNPOST_LOCATOR_CRASH_CHILD"

// TestBoltCrashKeepsAcknowledged runs a child process that applies writes
// to a bolt store and reports each acknowledged one, kills it with SIGKILL
// mid-stream, and checks that every acknowledged write is in the reopened
// store with a consistent digest.
func TestBoltCrashKeepsAcknowledged(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltCrashKeepsAcknowledged$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked, _ = strconv.Atoi(v)
			if acked >= 40 {
				break
			}
		}
	}
	_ = cmd.Process.Kill() // SIGKILL: no deferred Close, no flush
	_ = cmd.Wait()
	if acked < 40 {
		t.Fatalf("child acknowledged only %d writes", acked)
	}
	s, err := OpenBoltStore(path, DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := testHolder(t, 1, nil)
	for i := 0; i <= acked; i++ {
		if _, ok, err := s.Get(h.EntryID(lookupN(i))); err != nil || !ok {
			t.Fatalf("acknowledged write %d lost (%v)", i, err)
		}
	}
	fresh := newDigest(s.DigestDepth())
	n := 0
	_ = s.Range(func(e *Entry) bool { fresh.add(e.ID(), e.DigestHash(), +1); n++; return true })
	if fresh.bucket(0, 0) != s.Bucket(0, 0) || n != s.Len() || n < acked+1 {
		t.Fatalf("digest or length inconsistent after crash: %d entries, len %d", n, s.Len())
	}
	t.Logf("%d writes acknowledged before SIGKILL, %d on disk", acked+1, n)
}

func crashChild(t *testing.T, path string) {
	s, err := OpenBoltStore(path, DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	h := testHolder(t, 1, nil)
	for i := range 100_000 {
		if _, err := s.Apply(t0, mustPublish(t, h, i, 1, t0.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ack %d\n", i)
	}
}

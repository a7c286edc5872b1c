package testutil

import (
	"bufio"
	"os"
	"os/exec"
	"testing"
)

// KillChildMain is for a TestMain whose package tests a store against
// kill -9: if the environment variable env names a directory, it runs child
// there and returns true (TestMain then returns without running the tests).
// child writes to the store as fast as it can and prints one line for each
// write once the call has returned (acknowledged), until it is killed.
func KillChildMain(env string, child func(dir string)) bool {
	dir := os.Getenv(env)
	if dir == "" {
		return false
	}
	child(dir)
	return true
}

// KillAfter runs the test binary again as the child of [KillChildMain], in
// a new directory, passes each line it prints to line (in order, on the
// test's goroutine), and kills it with SIGKILL once it has printed acks
// lines; the lines already written are still read. It fails the test if
// the child stops first. It returns the directory, for the test to open
// the store the child was writing and check that every acknowledged write
// is there.
func KillAfter(t *testing.T, env string, acks int, line func(string)) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill() // should line fail the test first
		cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	n := 0
	for sc.Scan() {
		line(sc.Text())
		if n++; n == acks {
			cmd.Process.Kill() // SIGKILL
		}
	}
	if n < acks {
		t.Fatalf("the child stopped after %d acknowledgements, before %d", n, acks)
	}
	return dir
}

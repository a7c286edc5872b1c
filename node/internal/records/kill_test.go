package records

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// killChildEnv makes the test binary run killChild instead of the tests.
const killChildEnv = "SIGNPOST_RECORDS_KILL_CHILD"

func TestMain(m *testing.M) {
	if testutil.KillChildMain(killChildEnv, killChild) {
		return
	}
	testutil.VerifyNoLeaks(m)
}

// killPerson is the i-th synthetic person of the kill test (999 range).
func killPerson(i int) string { return fmt.Sprintf("999%07d", i) }

// killChild stores a record of a person and records the person's
// objection, and withdraws every third objection, as fast as it can,
// printing each once its call has returned (acknowledged), until it is
// killed.
func killChild(dir string) {
	s, err := Open(filepath.Join(dir, "records.db"), testKey)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		nhs := killPerson(i)
		if _, err := s.Put(rec(fmt.Sprintf("r%d", i), nhs), Note{}); err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		if _, err := s.ObjectPerson(nhs, Note{At: retain.Add(-time.Hour)}); err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, "O", i)
		out.Flush()
		if i%3 == 0 {
			if _, err := s.WithdrawObjection(nhs, retain.Add(-time.Hour), Note{}); err != nil {
				fmt.Println("ERR", err)
				os.Exit(2)
			}
			fmt.Fprintln(out, "W", i)
			out.Flush()
		}
	}
}

// TestKill9: a process recording and withdrawing objections is killed
// with SIGKILL at a random point; the store opened afterwards holds every
// acknowledged objection and withdrawal, each with its record marked (or
// cleared) to match. Only the person of the last acknowledgement may have
// a later change in flight (committed, not yet acknowledged).
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	rng := rand.New(rand.NewPCG(testutil.Seed(t), 0))
	for round := range 3 {
		kill := 5 + rng.IntN(150) // acknowledgements before the kill
		state := map[int]bool{}   // person → objection stands
		last := -1
		dir := testutil.KillAfter(t, killChildEnv, kill, func(line string) {
			var i int
			f := strings.Fields(line)
			if len(f) != 2 || (f[0] != "O" && f[0] != "W") {
				t.Fatalf("child: %s", line)
			}
			fmt.Sscan(f[1], &i)
			state[i], last = f[0] == "O", i
		})
		s, err := Open(filepath.Join(dir, "records.db"), testKey)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		standing := 0
		for i, want := range state {
			if i == last {
				continue
			}
			ids, objected, err := s.Person(killPerson(i))
			if err != nil || objected != want || len(ids) != 1 {
				t.Fatalf("round %d: person %d: objection %v, want %v (records %v, %v)", round, i, objected, want, ids, err)
			}
			if r, err := s.Get(ids[0]); err != nil || r.Objected != want {
				t.Fatalf("round %d: person %d's record objected %v, want %v (%v)", round, i, r.Objected, want, err)
			}
			if want {
				standing++
			}
		}
		s.Close()
		t.Logf("round %d: killed after %d acknowledgements; %d objections standing, checked", round, kill, standing)
	}
}

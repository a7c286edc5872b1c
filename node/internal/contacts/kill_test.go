package contacts

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
const killChildEnv = "SIGNPOST_CONTACTS_KILL_CHILD"

func TestMain(m *testing.M) {
	if testutil.KillChildMain(killChildEnv, killChild) {
		return
	}
	os.Exit(m.Run())
}

// killChild writes requests and decisions as fast as it can, printing each
// once its call has returned (acknowledged), until it is killed. Every
// third request is a broker's relayed one, its answers given with the
// holder's consent.
func killChild(dir string) {
	s, err := Open(filepath.Join(dir, "c.db"))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		r := received(NewID())
		if i%3 == 1 {
			r = relayedReq(r.ID)
		}
		if err := s.Create(r); err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, "C", r.ID, r.Side)
		out.Flush()
		if i%2 == 0 || i%3 == 1 {
			d := Decision{State: Answered, Contact: fmt.Sprintf("Jo %d", i), By: "jo", Consent: r.Side == Relayed}
			if i%4 == 0 {
				d = Decision{State: Declined, Reason: fmt.Sprintf("reason %d", i), By: "jo"}
			}
			if _, err := s.Decide(r.ID, r.Side, d, t0.Add(time.Minute)); err != nil {
				fmt.Println("ERR", err)
				os.Exit(2)
			}
			fmt.Fprintln(out, "D", r.ID, d.State, d.Contact+d.Reason)
			out.Flush()
		}
	}
}

// TestKill9: a process writing requests and decisions is killed with
// SIGKILL at a random point; the store opened afterwards holds every
// request and every decision whose call had returned, exactly as
// acknowledged.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	rng := rand.New(rand.NewPCG(testutil.Seed(t), 0))
	for round := range 3 {
		kill := 5 + rng.IntN(150)      // acknowledgements before the kill
		created := map[string]string{} // id → side
		decided := map[string][2]string{}
		dir := testutil.KillAfter(t, killChildEnv, kill, func(line string) {
			f := strings.SplitN(line, " ", 4)
			switch f[0] {
			case "C":
				created[f[1]] = f[2]
			case "D":
				decided[f[1]] = [2]string{f[2], f[3]}
			default:
				t.Fatalf("child: %s", line)
			}
		})
		s := open(t, filepath.Join(dir, "c.db"))
		for id, side := range created {
			r, err := s.Get(id)
			if err != nil || string(r.Side) != side {
				t.Fatalf("round %d: acknowledged %s request %s lost: %+v, %v", round, side, id, r, err)
			}
			if r.Side == Relayed && r.State == Answered && !r.Consent {
				t.Fatalf("round %d: the consent on %s was lost", round, id)
			}
			if d, ok := decided[id]; ok && (string(r.State) != d[0] || r.Contact+r.Reason != d[1]) {
				t.Fatalf("round %d: acknowledged decision on %s lost: %+v, want %v", round, id, r, d)
			}
		}
		t.Logf("round %d: killed after %d acknowledgements; %d requests, %d decisions kept", round, kill, len(created), len(decided))
	}
}

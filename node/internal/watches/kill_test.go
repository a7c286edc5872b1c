package watches

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/port"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// killChildEnv makes the test binary run killChild instead of the tests.
const killChildEnv = "SIGNPOST_WATCHES_KILL_CHILD"

func TestMain(m *testing.M) {
	if testutil.KillChildMain(killChildEnv, killChild) {
		return
	}
	os.Exit(m.Run())
}

// killChild starts watches and stores notices for them as fast as it can,
// printing each once its call has returned (acknowledged), until it is
// killed. Every third watch is stopped once it has a notice.
func killChild(dir string) {
	s, err := Open(filepath.Join(dir, "w.db"))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		w := watch(fmt.Sprintf("user%d", i%7), "safeguarding", key(byte(i)), [16]byte{byte(i >> 8), byte(i), 9})
		if _, _, err := s.Create(w, 1<<20, MaxKeys); err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, "W", w.ID)
		out.Flush()
		n, err := s.AddNotice(port.WatchNotice{WatchID: w.ID, Type: Involved, LookupKey: w.Keys[0], Entry: []byte(strconv.Itoa(i)), At: t0.Add(time.Duration(i) * time.Second)}, 10)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, "N", w.ID, n.Seq, i)
		out.Flush()
		if i%3 == 0 {
			if _, err := s.Delete(w.ID); err != nil {
				fmt.Println("ERR", err)
				os.Exit(2)
			}
			fmt.Fprintln(out, "D", w.ID)
			out.Flush()
		}
	}
}

// TestKill9: a process starting watches, storing notices and stopping
// watches is killed with SIGKILL at a random point; the store opened
// afterwards holds every watch and notice whose call had returned, and no
// watch whose stop had returned.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	rng := rand.New(rand.NewPCG(testutil.Seed(t), 0))
	for round := range 3 {
		kill := 5 + rng.IntN(150) // acknowledgements before the kill
		started := map[string]bool{}
		notices := map[string][2]string{} // watch → seq, entry
		stopped := map[string]bool{}
		dir := testutil.KillAfter(t, killChildEnv, kill, func(line string) {
			f := strings.Fields(line)
			switch f[0] {
			case "W":
				started[f[1]] = true
			case "N":
				notices[f[1]] = [2]string{f[2], f[3]}
			case "D":
				stopped[f[1]] = true
			default:
				t.Fatalf("child: %s", line)
			}
		})
		s := open(t, filepath.Join(dir, "w.db"))
		for id := range started {
			_, err := s.Get(id)
			if stopped[id] {
				if err == nil {
					t.Fatalf("round %d: acknowledged stop of %s lost", round, id)
				}
				continue
			}
			if err != nil {
				t.Fatalf("round %d: acknowledged watch %s lost: %v", round, id, err)
			}
			want, ok := notices[id]
			if !ok {
				continue
			}
			got, err := s.Notices(id)
			if err != nil || len(got) != 1 || strconv.FormatUint(got[0].Seq, 10) != want[0] || string(got[0].Entry) != want[1] {
				t.Fatalf("round %d: acknowledged notice of %s lost: %+v %v, want %v", round, id, got, err, want)
			}
		}
		t.Logf("round %d: killed after %d acknowledgements; %d watches, %d notices, %d stops kept", round, kill, len(started), len(notices), len(stopped))
	}
}

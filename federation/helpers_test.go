package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/locator"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// Integration tests run real memberlist nodes and peer APIs on loopback
// with shortened timings (as serf's testConfig does) and wait with testutil.Eventually,
// never with bare sleeps. Deadlines are generous: the CI box is a busy
// 2-core VM.
const convergeTimeout = 60 * time.Second

// testFed is a federation for tests: an authority, a gossip key and a
// revocation list.
type testFed struct {
	auth      *Authority
	gossipKey []byte
	serial    uint64
}

func newTestFed(t testing.TB) *testFed {
	t.Helper()
	k := make([]byte, GossipKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return &testFed{auth: mustAuthority(t), gossipKey: k}
}

// creds enrols id, valid in [notBefore, expires).
func (f *testFed) credsValid(t testing.TB, id string, notBefore, expires time.Time) *Credentials {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.serial++
	sd, err := f.auth.Enrol(Descriptor{
		NodeID: id, Agency: "Agency " + id, Category: "social-care",
		Purposes: []string{"safeguarding"}, PublicKey: pub,
		NotBefore: notBefore, Expires: expires, Serial: f.serial,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Credentials{Descriptor: sd, PrivateKey: priv}
}

func (f *testFed) creds(t testing.TB, id string) *Credentials {
	now := time.Now()
	return f.credsValid(t, id, now.Add(-time.Hour), now.Add(24*time.Hour))
}

// testLogger discards unless SIGNPOST_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("SIGNPOST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// config is a loopback configuration with test timings.
func (f *testFed) config(c *Credentials, dataDir string) Config {
	cfg := DefaultConfig()
	cfg.GossipBindAddr = "127.0.0.1:0"
	cfg.PeerBindAddr = "127.0.0.1:0"
	cfg.AuthorityKey = f.auth.PublicKey()
	cfg.Credentials = c
	cfg.GossipKeys = [][]byte{f.gossipKey}
	cfg.DataDir = dataDir
	cfg.GossipInterval = 20 * time.Millisecond
	cfg.ProbeInterval = 200 * time.Millisecond
	cfg.ProbeTimeout = 100 * time.Millisecond
	cfg.PushPullInterval = 2 * time.Second
	cfg.ReconnectInterval = 300 * time.Millisecond
	cfg.RequestTimeout = 5 * time.Second
	cfg.Protocol.PushInterval = 20 * time.Millisecond
	cfg.Protocol.AntiEntropyInterval = 500 * time.Millisecond
	cfg.Logger = testLogger()
	return cfg
}

// start creates and starts an agent that is shut down when the test ends.
func startAgent(t testing.TB, cfg Config, prepare ...func(*Agent)) *Agent {
	t.Helper()
	a, err := NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range prepare {
		p(a)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return a
}

// cluster starts n agents named node-0… (data dirs under dirs, if given)
// and joins them to the first.
func (f *testFed) cluster(t testing.TB, n int, dataDirs bool) []*Agent {
	t.Helper()
	agents := make([]*Agent, n)
	for i := range agents {
		dir := ""
		if dataDirs {
			dir = t.TempDir()
		}
		agents[i] = startAgent(t, f.config(f.creds(t, fmt.Sprintf("node-%d", i)), dir))
		if i > 0 {
			if _, err := agents[i].Join([]string{agents[0].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitMembers(t, agents...)
	return agents
}

// waitMembers waits until every agent sees every other as an alive member.
func waitMembers(t testing.TB, agents ...*Agent) {
	t.Helper()
	waitMembersWithin(t, convergeTimeout, agents...)
}

func waitMembersWithin(t testing.TB, timeout time.Duration, agents ...*Agent) {
	t.Helper()
	testutil.Eventually(t, timeout, func() error {
		for _, a := range agents {
			if got := aliveMembers(a); got != len(agents)-1 {
				return fmt.Errorf("%s sees %d alive members, want %d", a.Self().NodeID, got, len(agents)-1)
			}
		}
		return nil
	})
}

func aliveMembers(a *Agent) int {
	n := 0
	for _, m := range a.Members() {
		if m.Alive {
			n++
		}
	}
	return n
}

// testEntry is a fresh entry published by holder h under a random lookup
// key, with its seal key.
func testEntry(t testing.TB, h *locator.Holder) (*locator.Entry, locator.SealKey) {
	t.Helper()
	var lookup locator.LookupKey
	var seal locator.SealKey
	rand.Read(lookup[:])
	rand.Read(seal[:])
	now := time.Now()
	e, err := h.Publish(lookup, seal, "social-care", 1, now, now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return e, seal
}

func holderOf(t testing.TB, c *Credentials) *locator.Holder {
	t.Helper()
	var secret [32]byte
	rand.Read(secret[:])
	h, err := locator.NewHolder(c.Descriptor.Descriptor.NodeID, c.PrivateKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// publish publishes e on a and fails unless it was accepted.
func publish(t testing.TB, a *Agent, e *locator.Entry) {
	t.Helper()
	out, err := a.Publish(context.Background(), e)
	if err != nil || out.Result != locator.Accepted {
		t.Fatalf("publish on %s: %v %v", a.Self().NodeID, out, err)
	}
}

// missing returns the first agent whose replica lacks one of ids.
func missing(agents []*Agent, ids ...locator.ID) error {
	for _, a := range agents {
		for _, id := range ids {
			if _, ok, err := a.Store().Get(id); err != nil || !ok {
				return fmt.Errorf("%s lacks entry %s (err %v)", a.Self().NodeID, id, err)
			}
		}
	}
	return nil
}

// TestMain fails the run if any agent, sender, memberlist or HTTP
// goroutine outlives the tests.
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

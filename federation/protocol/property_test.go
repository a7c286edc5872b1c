package protocol_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/federation/protocol/protocoltest"
	"github.com/signpost-federation/signpost/locator"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

var (
	schedulesFlag = flag.Int("schedules", 2000, "number of random delivery schedules")
)

// writePool returns signed writes (versions, tombstones, conflicting equal
// versions from two nodes sharing a holder key) shared by all schedules.
func writePool(t testing.TB) []*locator.Entry {
	var pool []*locator.Entry
	exp := t0.Add(365 * 24 * time.Hour)
	for hi := range 3 {
		h := testHolder(t, hi)
		for i := range 6 {
			for v := uint64(1); v <= 3; v++ {
				pool = append(pool, publish(t, h, i, v))
				if v == 2 { // an equal-version conflict, decided by Compare
					pool = append(pool, publish(t, h, i, v))
				}
			}
			w, err := h.Withdraw(lookupN(i), sealN(i), 3, exp)
			if err != nil {
				t.Fatal(err)
			}
			pool = append(pool, w)
		}
		// Short-lived entries that expire during the schedule.
		for i := 100; i < 103; i++ {
			e, err := h.Publish(lookupN(i), sealN(i), "school", 1, t0, t0.Add(time.Duration(1+i-100)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			pool = append(pool, e)
		}
	}
	return pool
}

// TestRandomSchedulesConverge runs thousands of random schedules: writes at
// random nodes and times over a network that loses, duplicates and reorders
// messages, with nodes of different digest depths and thresholds and tight
// pull bounds and timeouts, one node sometimes cut off and then reported
// alive again (PeerAlive); then a loss-free repair period of anti-entropy.
// Pulls must stay within their bounds, and every replica must end
// byte-identical to the merge of all writes.
func TestRandomSchedulesConverge(t *testing.T) {
	seed := testutil.Seed(t)
	pool := writePool(t)
	n := *schedulesFlag
	if testing.Short() {
		n = 200
	}
	r := rand.New(rand.NewPCG(seed, 3))
	for s := range n {
		sseed := r.Uint64()
		if err := runSchedule(t, pool, sseed); err != nil {
			t.Fatalf("seed %d schedule %d (schedule seed %d): %v", seed, s, sseed, err)
		}
	}
}

func runSchedule(t *testing.T, pool []*locator.Entry, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 4))
	net := protocoltest.New(seed, t0)
	net.Loss = r.Float64() * 0.4
	net.Dup = r.Float64() * 0.3
	net.MinDelay = time.Millisecond
	net.MaxDelay = time.Duration(1+r.IntN(500)) * time.Millisecond
	nodes := 2 + r.IntN(4)
	bounds := make([][2]int, nodes) // MaxPulls, MaxPullsPerPeer per node
	for i := range nodes {
		s, err := locator.NewMemStore(locator.Policy{DigestDepth: 1 + r.IntN(3)})
		if err != nil {
			return err
		}
		cfg := protocol.DefaultConfig()
		cfg.PushInterval = time.Duration(10+r.IntN(200)) * time.Millisecond
		cfg.AntiEntropyInterval = time.Duration(200+r.IntN(2000)) * time.Millisecond
		cfg.StampThreshold = []int{1, 2, 4, 32}[r.IntN(4)]
		cfg.Fanout = 1 + r.IntN(3)
		cfg.MaxPushQueue = 1 + r.IntN(8)
		// Tight pull bounds and timeouts, so that pulls are refused,
		// retried and abandoned under the loss and reordering.
		cfg.MaxPulls = 1 + r.IntN(8)
		cfg.MaxPullsPerPeer = 1 + r.IntN(4)
		cfg.PullTimeout = time.Duration(1+r.IntN(300)) * time.Millisecond
		cfg.RejoinDelay = time.Duration(1+r.IntN(1000)) * time.Millisecond
		bounds[i] = [2]int{cfg.MaxPulls, cfg.MaxPullsPerPeer}
		if _, err := net.Add(protocol.PeerID(fmt.Sprintf("n%d", i)), s, cfg); err != nil {
			return err
		}
	}
	// Writes at random nodes and times, each write possibly twice.
	type write struct {
		at   time.Duration
		node int
		e    *locator.Entry
	}
	var ws []write
	for range 1 + r.IntN(30) {
		ws = append(ws, write{time.Duration(r.IntN(3000)) * time.Millisecond, r.IntN(nodes), pool[r.IntN(len(pool))]})
	}
	slices.SortStableFunc(ws, func(a, b write) int { return int(a.at - b.at) })
	ref, _ := locator.NewMemStore(locator.Policy{DigestDepth: 1})
	start := net.Now
	for _, w := range ws {
		net.RunFor(start.Add(w.at).Sub(net.Now))
		if _, err := net.Nodes()[w.node].Engine.Publish(net.Now, w.e); err != nil && !isStale(err) && !errorsIs(err, locator.ErrExpired) {
			return err
		}
		_, _ = ref.Apply(t0, w.e)
	}
	// Partition one node for a while sometimes; at the heal membership
	// reports it alive again, on both sides.
	if r.IntN(3) == 0 {
		cut := net.Nodes()[r.IntN(nodes)]
		net.Cut = func(from, to protocol.PeerID) bool { return from == cut.ID || to == cut.ID }
		since := net.Now
		net.RunFor(2 * time.Second)
		net.Cut = nil
		for _, n := range net.Nodes() {
			if n != cut {
				n.Engine.PeerAlive(net.Now, cut.ID, since)
				cut.Engine.PeerAlive(net.Now, n.ID, since)
			}
		}
	}
	checkPulls := func() error {
		for i, n := range net.Nodes() {
			if got, most := n.Engine.Outstanding(); got > bounds[i][0] || most > bounds[i][1] {
				return fmt.Errorf("%s: %d pulls outstanding, %d to one peer (bounds %v)", n.ID, got, most, bounds[i])
			}
		}
		return nil
	}
	if err := checkPulls(); err != nil {
		return err
	}
	net.RunFor(time.Second)
	net.Loss = 0
	var boundErr error
	if !net.RunUntil(10*time.Minute, func() bool {
		if boundErr == nil {
			boundErr = checkPulls()
		}
		return converged(net)()
	}) {
		return fmt.Errorf("no convergence after 10 min of repair")
	}
	if boundErr != nil {
		return boundErr
	}
	// Expiry at one instant everywhere: replicas must still agree.
	for _, s := range []locator.Store{ref, net.Nodes()[0].Store} {
		if _, err := s.Expire(net.Now); err != nil {
			return err
		}
	}
	for _, n := range net.Nodes()[1:] {
		if _, err := n.Store.Expire(net.Now); err != nil {
			return err
		}
	}
	if !identical(t, net) {
		return fmt.Errorf("replicas differ")
	}
	if got, want := contents(t, net.Nodes()[0].Store), contents(t, ref); string(got) != string(want) {
		return fmt.Errorf("replicas differ from the merge of all writes")
	}
	if net.HandleErrors != 0 {
		return fmt.Errorf("%d HandleMessage errors", net.HandleErrors)
	}
	return nil
}

func isStale(err error) bool {
	return err != nil && (errorsIs(err, locator.ErrStale))
}

// TestMain fails the run if a goroutine outlives the tests (the bulk
// tests run concurrent senders).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

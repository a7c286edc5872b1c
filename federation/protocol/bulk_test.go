package protocol_test

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/federation/protocol/protocoltest"
	"github.com/signpost-federation/signpost/locator"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// sealedSize is the size of a real sealed part for a short node id and
// category (nonce 24, tag 16, payload ≈ 100).
const sealedSize = 140

// syntheticEntries signs n entries fast: one entry key per worker, distinct
// lookup keys, random sealed bytes. Validly signed, so stores accept them.
func syntheticEntries(t testing.TB, seed uint64, n int) []*locator.Entry {
	t.Helper()
	out := make([]*locator.Entry, n)
	const workers = 2
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			var kseed [32]byte
			binary.BigEndian.PutUint64(kseed[:], seed)
			kseed[31] = byte(w)
			key := ed25519.NewKeyFromSeed(kseed[:])
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			sealed := make([]byte, sealedSize)
			for i := w; i < n; i += workers {
				var lk locator.LookupKey
				binary.BigEndian.PutUint64(lk[:], seed)
				binary.BigEndian.PutUint64(lk[8:], uint64(i))
				for j := range sealed {
					sealed[j] = byte(r.Uint32())
				}
				e, err := locator.NewEntry(lk, key, 1, t0.Add(365*24*time.Hour), false, sealed)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = e
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// bulkSet is one large synthetic set shared by the bulk and reconciliation
// tests (signing and verifying 100k entries is most of their cost), with
// one VerifyCache so that each entry is verified once per test binary.
var bulkSet struct {
	once    sync.Once
	entries []*locator.Entry
	cache   *locator.VerifyCache
}

func sharedBulk(t testing.TB, n int) ([]*locator.Entry, *locator.VerifyCache) {
	bulkSet.once.Do(func() {
		bulkSet.entries = syntheticEntries(t, 42, n+100)
		bulkSet.cache = locator.NewVerifyCache(n + 100)
	})
	if len(bulkSet.entries) < n+100 {
		t.Fatalf("shared set of %d entries, need %d", len(bulkSet.entries), n+100)
	}
	return bulkSet.entries[:n+100], bulkSet.cache
}

func bulkSize() int {
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

func totalSize(es []*locator.Entry) uint64 {
	var n uint64
	for _, e := range es {
		n += uint64(e.Size())
	}
	return n
}

// TestBulkImport publishes a bulk import at one node of a 10-node
// federation: push degrades (bounded queue) and anti-entropy carries the
// rest to every replica. Total bytes on the wire must stay within 3× the
// entries' own size times the 9 replicas that need them.
func TestBulkImport(t *testing.T) {
	n := bulkSize()
	seed := testutil.Seed(t)
	all, cache := sharedBulk(t, n) // sim-style cache: each write verified once
	es := all[:n]
	net := newNet(t, seed, 10, locator.Policy{VerifyCache: cache}, protocol.DefaultConfig())
	src := net.Nodes()[0]
	start := time.Now()
	for _, e := range es {
		if _, err := src.Engine.Publish(net.Now, e); err != nil {
			t.Fatal(err)
		}
	}
	if !net.RunUntil(30*time.Minute, func() bool {
		for _, node := range net.Nodes() {
			if node.Store.Len() != n {
				return false
			}
		}
		return true
	}) {
		for _, node := range net.Nodes() {
			t.Logf("%s: %d", node.ID, node.Store.Len())
		}
		t.Fatalf("seed %d: bulk import did not reach every replica", seed)
	}
	elapsed := net.Now.Sub(t0)
	if !converged(net)() {
		t.Fatalf("seed %d: digests differ", seed)
	}
	own := totalSize(es)
	need := own * uint64(len(net.Nodes())-1)
	var push, ae uint64
	for _, node := range net.Nodes() {
		st := node.Engine.Stats()
		push += st.Push.BytesSent
		ae += st.AntiEntropy.BytesSent
	}
	ratio := float64(net.BytesSent) / float64(need)
	t.Logf("%d entries (%d B own, %d B to 9 replicas): %d B sent (push %d, anti-entropy %d) = %.3f× the need, %.1f× one copy; virtual time %v, wall %v",
		n, own, need, net.BytesSent, push, ae, ratio, float64(net.BytesSent)/float64(own), elapsed, time.Since(start).Round(time.Millisecond))
	if ratio > 3 {
		t.Fatalf("seed %d: %.2f× the bytes needed (limit 3×)", seed, ratio)
	}
	if net.HandleErrors != 0 {
		t.Fatalf("%d handle errors", net.HandleErrors)
	}
}

// reconcilePair builds two replicas holding a common set of base entries
// plus diff entries only at a, runs one anti-entropy exchange started by b
// and returns the bytes it cost.
func reconcilePair(t testing.TB, seed uint64, base, diff []*locator.Entry, depth int, cfg protocol.Config, cache *locator.VerifyCache) (bytes uint64, msgs uint64) {
	t.Helper()
	if cache == nil {
		cache = locator.NewVerifyCache(len(base) + len(diff))
	}
	pol := locator.Policy{DigestDepth: depth, VerifyCache: cache}
	net := protocoltest.New(seed, t0)
	var nodes []*protocoltest.Node
	for i := range 2 {
		s, err := locator.NewMemStore(pol)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApplyBatch(t0, base); err != nil {
			t.Fatal(err)
		}
		node, err := net.Add(protocol.PeerID(fmt.Sprintf("r%d", i)), s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, node)
	}
	if _, err := nodes[0].Store.ApplyBatch(t0, diff); err != nil {
		t.Fatal(err)
	}
	nodes[1].Engine.StartAntiEntropy()
	net.Drain()
	if nodes[0].Store.Bucket(0, 0) != nodes[1].Store.Bucket(0, 0) {
		t.Fatal("one exchange did not reconcile")
	}
	return net.BytesSent, net.MsgsSent
}

// TestReconcileCostTracksDifference: 100 differing entries among a large
// common set cost kilobytes — bounded by the difference, not the set.
func TestReconcileCostTracksDifference(t *testing.T) {
	n := bulkSize()
	seed := testutil.Seed(t)
	all, cache := sharedBulk(t, n)
	base, diff := all[:n], all[n:]
	got, msgs := reconcilePair(t, seed, base, diff, 4, protocol.DefaultConfig(), cache)
	entry := totalSize(diff) / uint64(len(diff))
	// Per differing entry: the entry itself, plus a few digest levels of
	// 16 children (24 B each) and a bucket of stamps (57 B each).
	limit := uint64(len(diff)) * (entry + 2048)
	t.Logf("set %d, difference %d: %d B in %d messages (%.0f B per differing entry; whole set %d B; limit %d B)",
		n, len(diff), got, msgs, float64(got)/float64(len(diff)), totalSize(base), limit)
	if got > limit {
		t.Fatalf("seed %d: reconciliation cost %d B > %d B", seed, got, limit)
	}
}

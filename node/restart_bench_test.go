package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/internal/records"
)

// buildPublishedStore writes n records straight into a records store, each
// marked published under epoch 1 with made-up keys (no tokenizer, no
// index): the state a node is in after publishing them all.
func buildPublishedStore(tb testing.TB, dir string, n int, purposes []string) {
	tb.Helper()
	s, err := openRecordsIn(dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	nums := syntheticNumbers(min(n, 500_000))
	retain := time.Now().Add(5 * 365 * 24 * time.Hour).UTC().Truncate(time.Second)
	const chunk = 20_000
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		rs := make([]records.Record, 0, hi-lo)
		for i := lo; i < hi; i++ {
			rs = append(rs, records.Record{LocalID: fmt.Sprintf("rec-%07d", i), NHSNumber: nums[i%len(nums)], Category: "cin", RetainUntil: retain, Created: retain.Add(-time.Hour)})
		}
		res, err := s.PutBatch(rs, records.Note{At: time.Now()})
		if err != nil {
			tb.Fatal(err)
		}
		done := make([]uint64, 0, len(res))
		set := make(map[string]records.Published, len(res))
		for _, r := range res {
			done = append(done, r.Seq)
			p := records.Published{Epoch: 1, Version: r.Record.Version, Expires: retain}
			for _, pu := range purposes {
				sum := sha256.Sum256([]byte(pu + r.Record.LocalID))
				var k records.PubKey
				k.Purpose = pu
				copy(k.Lookup[:], sum[:16])
				k.Seal = sha256.Sum256(sum[:])
				p.Keys = append(p.Keys, k)
			}
			set[r.Record.LocalID] = p
		}
		if err := s.Complete(done, set, nil); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkRestart measures a restart of a node whose records are all
// published: from opening its store to /readyz answering 200 (restart-ms),
// then its first record write (first-write-ms), against a real locator
// replica. The node's own keys are watched, for "match" notices, in the
// background after ready (own-keys-watched-ms, from the start); the first
// write races with that. later-write-ms is a write once that is done: the
// normal latency to compare the first with. The records store is built once per
// size, directly. Run:
//
//	go test ./node -run '^$' -bench BenchmarkRestart -benchtime 3x -timeout 30m
//
// (SIGNPOST_BENCH_ENTRIES=N restricts it to one size; SIGNPOST_BENCH_STORE=DIR
// keeps the stores built under DIR and reuses them in later runs.)
func BenchmarkRestart(b *testing.B) {
	sizes := []int{10_000, 100_000, 1_000_000}
	if n := benchEntries(); n != 1_000_000 {
		sizes = []int{n}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			if keep := os.Getenv("SIGNPOST_BENCH_STORE"); keep != "" {
				dir = filepath.Join(keep, strconv.Itoa(n))
			}
			cfg := DefaultConfig()
			cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir = "a", "Agency a", "school", dir
			if _, err := os.Stat(filepath.Join(dir, "records.db")); err != nil {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					b.Fatal(err)
				}
				buildPublishedStore(b, dir, n, cfg.Purposes)
			}
			store, err := locator.NewMemStore(locator.DefaultPolicy())
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			pub, priv, _ := ed25519.GenerateKey(rand.Reader)
			var secret [32]byte
			rand.Read(secret[:])
			h, err := locator.NewHolder("a", priv, secret)
			if err != nil {
				b.Fatal(err)
			}
			index := adapter.NewLocatorIndex(h, store, nil, adapter.StaticNodeKeys{"a": pub}, nil)
			var restart, first, later, watched time.Duration
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				tok := &fakeTokenizer{}
				node, err := New(cfg, Options{Tokenizer: tok, Index: index, Keyring: soloKeyring("a"), Auth: tokens,
					Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				if err := node.Start(); err != nil {
					b.Fatal(err)
				}
				hd := node.Handler()
				rec := httptest.NewRecorder()
				hd.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("readyz %d", rec.Code)
				}
				restart += time.Since(t0)
				t1 := time.Now()
				rec = httptest.NewRecorder()
				req := httptest.NewRequest("POST", "/v1/records", strings.NewReader(fmt.Sprintf(`{"localId":"new-%d-%d","nhsNumber":"%s"}`, t0.UnixNano(), i, nhsA)))
				req.Header.Set("Authorization", "Bearer op-token")
				req.Header.Set("Content-Type", "application/json")
				hd.ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					b.Fatalf("first write %d %s", rec.Code, rec.Body)
				}
				first += time.Since(t1)
				if tok.callCount() != 2 {
					b.Fatalf("%d tokenizer calls, want the first write's 2", tok.callCount())
				}
				// The normal latency of a write, for comparison: once the
				// start's background work is done.
				b.StopTimer()
				node.waitStarted()
				watched += time.Since(t0)
				t2 := time.Now()
				rec = httptest.NewRecorder()
				req = httptest.NewRequest("POST", "/v1/records", strings.NewReader(fmt.Sprintf(`{"localId":"later-%d-%d","nhsNumber":"%s"}`, t0.UnixNano(), i, nhsB)))
				req.Header.Set("Authorization", "Bearer op-token")
				req.Header.Set("Content-Type", "application/json")
				hd.ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					b.Fatalf("later write %d %s", rec.Code, rec.Body)
				}
				later += time.Since(t2)
				b.StartTimer()
				if err := node.Shutdown(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(restart.Microseconds())/1000/float64(b.N), "restart-ms")
			b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "first-write-ms")
			b.ReportMetric(float64(later.Microseconds())/1000/float64(b.N), "later-write-ms")
			b.ReportMetric(float64(watched.Microseconds())/1000/float64(b.N), "own-keys-watched-ms")
		})
	}
}

// waitStarted waits for Start's background work before the publisher's
// first step (the watch of the node's own keys).
func (n *Node) waitStarted() { <-n.ownWatched }

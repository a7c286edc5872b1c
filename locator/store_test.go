package locator

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// stores returns a constructor per implementation.
func stores() map[string]func(t testing.TB, p Policy) Store {
	return map[string]func(t testing.TB, p Policy) Store{
		"mem": func(t testing.TB, p Policy) Store {
			s, err := NewMemStore(p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"bolt": func(t testing.TB, p Policy) Store {
			s, err := OpenBoltStore(filepath.Join(t.TempDir(), "locator.db"), p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

func forEachStore(t *testing.T, fn func(t *testing.T, open func(testing.TB, Policy) Store)) {
	for _, name := range []string{"mem", "bolt"} {
		open := stores()[name]
		t.Run(name, func(t *testing.T) { fn(t, open) })
	}
}

// dump returns the encodings of s in id order.
func dump(t testing.TB, s Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Range(func(e *Entry) bool { b.Write(e.Encode()); return true }); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestApplyRejections(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(testing.TB, Policy) Store) {
		h, mallory := testHolder(t, 1, nil), testHolder(t, 2, nil)
		pol := DefaultPolicy()
		now := t0
		good := mustPublish(t, h, 1, 5, now.Add(time.Hour))

		badSig := wire(t, mustPublish(t, h, 2, 1, now.Add(time.Hour)), func(e *Entry) { e.Sig[0] ^= 1 })
		// Mallory rewrites h's entry: same lookup and entry key (so the
		// same id), a higher version, her signature.
		hijack := wire(t, mustPublish(t, mallory, 1, 6, now.Add(time.Hour)), func(e *Entry) {
			e.EntryPub = good.EntryPub
			signEntry(e, mallory.entryKey(lookupN(1)))
		})
		if hijack.ID() != good.ID() {
			t.Fatal("the hijack does not target the victim's entry")
		}
		older := mustPublish(t, h, 1, 4, now.Add(time.Hour))
		expired := mustPublish(t, h, 3, 1, now.Add(-time.Second))
		tooLong := mustPublish(t, h, 4, 1, now.Add(pol.MaxRetention+pol.MaxFutureSkew+time.Minute))
		// Within what DecodeEntry takes, beyond the policy's entry size.
		pol.MaxEntrySize = 1024
		big := wire(t, mustPublish(t, h, 5, 1, now.Add(time.Hour)), func(e *Entry) {
			e.Sealed = make([]byte, pol.MaxEntrySize)
			signEntry(e, h.entryKey(lookupN(5)))
		})

		tests := []struct {
			name   string
			e      *Entry
			reason Reason
		}{
			{"wrong entry signature", badSig, ReasonBadSignature},
			{"write by another key", hijack, ReasonBadSignature},
			{"older version replayed", older, ReasonStale},
			{"expired", expired, ReasonExpired},
			{"expiry beyond maximum", tooLong, ReasonRetentionTooLong},
			{"oversized", big, ReasonTooLarge},
		}
		s := open(t, pol)
		if o, err := s.Apply(now, good); err != nil || o.Result != Accepted {
			t.Fatalf("good entry: %v %v", o, err)
		}
		before := dump(t, s)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c0 := s.Counters()
				o, err := s.Apply(now, tc.e)
				if o.Result != Rejected || o.Reason != tc.reason || !errors.Is(err, tc.reason.Err()) {
					t.Fatalf("got %v/%v %v, want rejected %v", o.Result, o.Reason, err, tc.reason)
				}
				if got := s.Counters().Rejected[tc.reason]; got != c0.Rejected[tc.reason]+1 {
					t.Fatalf("counter %v = %d, want %d", tc.reason, got, c0.Rejected[tc.reason]+1)
				}
				if !bytes.Equal(dump(t, s), before) {
					t.Fatal("store changed")
				}
				got, err := s.Lookup(now, tc.e.Lookup)
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range got {
					if bytes.Equal(g.Encode(), tc.e.Encode()) {
						t.Fatal("rejected entry returned by Lookup")
					}
				}
			})
		}
		// Undecodable and unopenable entries are counted by the caller.
		for _, tc := range []struct {
			name string
			b    []byte
			r    Reason
		}{
			{"truncated encoding", good.Encode()[:40], ReasonTruncated},
			{"oversized encoding", make([]byte, MaxEncodedSize+1), ReasonTooLarge},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := DecodeEntry(tc.b)
				r := ReasonOf(err)
				if r != tc.r {
					t.Fatalf("reason %v, want %v", r, tc.r)
				}
				c0 := s.Counters().Rejected[r]
				s.NoteRejected(r)
				if s.Counters().Rejected[r] != c0+1 {
					t.Fatal("not counted")
				}
			})
		}
		if c := s.Counters(); c.Accepted != 1 {
			t.Fatalf("accepted = %d", c.Accepted)
		}
		if o, err := s.Apply(now, good); err != nil || o.Result != Duplicate {
			t.Fatalf("replay of the same write: %v %v", o, err)
		}
	})
}

func TestLookupAndTombstone(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(testing.TB, Policy) Store) {
		s := open(t, DefaultPolicy())
		h1, h2 := testHolder(t, 1, nil), testHolder(t, 2, nil)
		exp := t0.Add(time.Hour)
		for _, e := range []*Entry{mustPublish(t, h1, 9, 1, exp), mustPublish(t, h2, 9, 1, exp), mustPublish(t, h1, 10, 1, exp)} {
			if _, err := s.Apply(t0, e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Lookup(t0, lookupN(9))
		if err != nil || len(got) != 2 {
			t.Fatalf("lookup: %d entries, %v", len(got), err)
		}
		if _, err := s.Apply(t0, mustWithdraw(t, h1, 9, 2, exp)); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Lookup(t0, lookupN(9))
		if len(got) != 1 || got[0].ID() != h2.EntryID(lookupN(9)) {
			t.Fatalf("after withdraw: %d entries", len(got))
		}
		// The tombstone is still stored and wins over the old live write.
		if _, err := s.Apply(t0, mustPublish(t, h1, 9, 1, exp)); !errors.Is(err, ErrStale) {
			t.Fatalf("resurrection: %v", err)
		}
		if e, ok, _ := s.Get(h1.EntryID(lookupN(9))); !ok || !e.Deleted {
			t.Fatal("tombstone not kept")
		}
		// Lookup hides entries past expiry even before Expire runs.
		if got, _ := s.Lookup(exp, lookupN(10)); len(got) != 0 {
			t.Fatal("expired entry returned")
		}
		n, err := s.Expire(exp)
		if err != nil || n != 3 || s.Len() != 0 {
			t.Fatalf("expire: %d %v, len %d", n, err, s.Len())
		}
		if s.Bucket(0, 0) != (Bucket{}) {
			t.Fatal("digest not empty after expiry")
		}
	})
}

func TestWatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(testing.TB, Policy) Store) {
		s := open(t, Policy{WatchBuffer: 2})
		h := testHolder(t, 1, nil)
		exp := t0.Add(time.Hour)
		w := s.Watch(lookupN(1))
		other := s.Watch(lookupN(2))
		for v := uint64(1); v <= 3; v++ {
			if _, err := s.Apply(t0, mustPublish(t, h, 1, v, exp)); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = s.Apply(t0, mustPublish(t, h, 1, 1, exp)) // stale: no event
		for _, want := range []uint64{1, 2} {
			if e := <-w.C; e.Version != want {
				t.Fatalf("event version %d, want %d", e.Version, want)
			}
		}
		if w.Dropped() != 1 {
			t.Fatalf("dropped %d, want 1 (buffer of 2, three events)", w.Dropped())
		}
		select {
		case e := <-other.C:
			t.Fatalf("unrelated watch got %v", e.ID())
		default:
		}
		w.Close()
		w.Close()
		if _, ok := <-w.C; ok {
			t.Fatal("channel open after Close")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-other.C; ok {
			t.Fatal("channel open after store Close")
		}
		other.Close()
	})
}

// TestWatchSharedKeys: several watches of one key (one naming it twice)
// each get every event, closing any of them leaves the others theirs, and
// the store's Close closes whatever is still open.
func TestWatchSharedKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(testing.TB, Policy) Store) {
		s := open(t, Policy{WatchBuffer: 8})
		h := testHolder(t, 1, nil)
		exp := t0.Add(time.Hour)
		a := s.Watch(lookupN(1), lookupN(1))
		b := s.Watch(lookupN(1))
		c := s.Watch(lookupN(1), lookupN(2))
		version := uint64(0)
		publish := func(i int) {
			t.Helper()
			version++
			if _, err := s.Apply(t0, mustPublish(t, h, i, version, exp)); err != nil {
				t.Fatal(err)
			}
		}
		got := func(w *Watch, want int) {
			t.Helper()
			n := 0
			for {
				select {
				case <-w.C:
					n++
					continue
				default:
				}
				break
			}
			if n != want {
				t.Fatalf("%d events, want %d", n, want)
			}
		}
		publish(1)
		got(a, 1)
		got(b, 1)
		got(c, 1)
		a.Close() // the key's first watch
		publish(1)
		publish(2)
		got(b, 1)
		got(c, 2)
		c.Close()
		publish(1)
		got(b, 1)
		d := s.Watch(lookupN(2))
		publish(2)
		got(d, 1)
		b.Close()
		publish(1)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, w := range []*Watch{a, b, c, d} {
			for range w.C {
			}
		}
		d.Close()
	})
}

// randomWrites returns writes for a few entries with random versions,
// tombstones and equal-version conflicts.
func randomWrites(t testing.TB, r *rand.Rand, holders []*Holder, n int) []*Entry {
	out := make([]*Entry, 0, n)
	for range n {
		h := holders[r.IntN(len(holders))]
		i := r.IntN(4)
		v := uint64(1 + r.IntN(5))
		exp := t0.Add(time.Duration(1+r.IntN(3)) * time.Hour)
		if r.IntN(4) == 0 {
			out = append(out, mustWithdraw(t, h, i, v, exp))
		} else {
			out = append(out, mustPublish(t, h, i, v, exp))
		}
	}
	return out
}

func TestMergeProperties(t *testing.T) {
	seed := testutil.Seed(t)
	r := rand.New(rand.NewPCG(seed, 1))
	holders := []*Holder{testHolder(t, 1, nil), testHolder(t, 2, nil), testHolder(t, 3, nil)}
	pol := Policy{DigestDepth: 1}
	state := func(ws ...[]*Entry) ([]byte, Bucket) {
		s, err := NewMemStore(pol)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			for _, e := range w {
				if _, err := s.Apply(t0, e); err != nil && !errors.Is(err, ErrStale) {
					t.Fatal(err)
				}
			}
		}
		return dump(t, s), s.Bucket(0, 0)
	}
	for iter := range 300 {
		a := randomWrites(t, r, holders, 1+r.IntN(8))
		b := randomWrites(t, r, holders, 1+r.IntN(8))
		c := randomWrites(t, r, holders, 1+r.IntN(8))
		all := slices.Concat(a, b, c)
		want, wantRoot := state(all)
		// Commutative: any permutation of the writes, including the
		// union taken in another order.
		perm := slices.Clone(all)
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		// Idempotent: every write delivered twice.
		twice := slices.Concat(perm, all)
		for name, got := range map[string][]*Entry{
			"commutative": perm,
			"associative": slices.Concat(c, b, a),
			"idempotent":  twice,
		} {
			if g, root := state(got); !bytes.Equal(g, want) || root != wantRoot {
				t.Fatalf("seed %d iteration %d: %s property broken", seed, iter, name)
			}
		}
		// Associative as merge of merged replicas: (a∪b)∪c = a∪(b∪c),
		// merging store contents rather than raw writes.
		if g, _ := state(replay(t, pol, a, b), c); !bytes.Equal(g, want) {
			t.Fatalf("seed %d iteration %d: (a∪b)∪c differs", seed, iter)
		}
		if g, _ := state(a, replay(t, pol, b, c)); !bytes.Equal(g, want) {
			t.Fatalf("seed %d iteration %d: a∪(b∪c) differs", seed, iter)
		}
	}
}

// replay merges the writes into a fresh store and returns its contents.
func replay(t testing.TB, pol Policy, ws ...[]*Entry) []*Entry {
	s, err := NewMemStore(pol)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if _, err := s.ApplyBatch(t0, w); err != nil {
			t.Fatal(err)
		}
	}
	var out []*Entry
	_ = s.Range(func(e *Entry) bool { out = append(out, e); return true })
	return out
}

func TestDigestIncremental(t *testing.T) {
	seed := testutil.Seed(t)
	r := rand.New(rand.NewPCG(seed, 2))
	holders := []*Holder{testHolder(t, 1, nil), testHolder(t, 2, nil)}
	forEachStore(t, func(t *testing.T, open func(testing.TB, Policy) Store) {
		s := open(t, Policy{DigestDepth: 2})
		for _, e := range randomWrites(t, r, holders, 200) {
			_, _ = s.Apply(t0, e)
		}
		// Recompute every bucket from scratch and compare.
		fresh := newDigest(2)
		_ = s.Range(func(e *Entry) bool { fresh.add(e.ID(), e.DigestHash(), +1); return true })
		for l := 0; l <= 2; l++ {
			for i := range uint32(1 << (4 * l)) {
				if s.Bucket(l, i) != fresh.bucket(l, i) {
					t.Fatalf("seed %d: bucket %d/%d differs", seed, l, i)
				}
			}
		}
		// Stamps of a bucket list exactly its entries, in order.
		n := 0
		for i := range uint32(16) {
			ss, err := s.Stamps(1, i, ID{}, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(ss) != int(s.Bucket(1, i).Count) {
				t.Fatalf("bucket 1/%d: %d stamps, count %d", i, len(ss), s.Bucket(1, i).Count)
			}
			n += len(ss)
		}
		if n != s.Len() {
			t.Fatalf("%d stamps for %d entries", n, s.Len())
		}
	})
}

func TestBoltRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locator.db")
	h := testHolder(t, 1, nil)
	s, err := OpenBoltStore(path, DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	var batch []*Entry
	for i := range 100 {
		batch = append(batch, mustPublish(t, h, i, 1, t0.Add(time.Hour)))
	}
	if _, err := s.ApplyBatch(t0, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(t0, mustWithdraw(t, h, 3, 2, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	bad := *batch[5]
	bad.Version = 9
	_, _ = s.Apply(t0, &bad)
	wantDump, wantRoot, wantCounters := dump(t, s), s.Bucket(0, 0), s.Counters()
	// An acknowledged write is on disk before Close: read the file with a
	// second, read-only look by reopening after Close.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	s2, err := OpenBoltStore(path, DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !bytes.Equal(dump(t, s2), wantDump) || s2.Bucket(0, 0) != wantRoot || s2.Len() != 100 {
		t.Fatal("replica or digest changed across restart")
	}
	if s2.Counters() != wantCounters {
		t.Fatalf("counters %+v, want %+v", s2.Counters(), wantCounters)
	}
	if got, _ := s2.Lookup(t0, lookupN(3)); len(got) != 0 {
		t.Fatal("tombstoned entry visible after restart")
	}
}

func TestPolicyValidation(t *testing.T) {
	for _, p := range []Policy{{MaxEntrySize: 10}, {DigestDepth: 9}, {MaxRetention: -1}} {
		if _, err := NewMemStore(p); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
}

func TestVerifyCache(t *testing.T) {
	c := NewVerifyCache(2)
	pol := Policy{VerifyCache: c}
	h := testHolder(t, 1, nil)
	a, b := mustPublish(t, h, 1, 1, t0.Add(time.Hour)), mustPublish(t, h, 2, 1, t0.Add(time.Hour))
	s1, _ := NewMemStore(pol)
	s2, _ := NewMemStore(pol)
	for _, s := range []*MemStore{s1, s2} {
		for _, e := range []*Entry{a, b} {
			if _, err := s.Apply(t0, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c.Len() != 2 {
		t.Fatalf("cache holds %d", c.Len())
	}
	// A forged copy of a cached entry hashes differently: still checked.
	bad := *a
	bad.Version = 2
	if _, err := s2.Apply(t0, bad.seal()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged write with a warm cache: %v", err)
	}
	_, _ = s1.Apply(t0, mustPublish(t, h, 3, 1, t0.Add(time.Hour)))
	if c.Len() != 2 {
		t.Fatalf("cache grew to %d, capacity 2", c.Len())
	}
}

// TestConcurrentHammer: concurrent writers, readers and watchers on both
// stores (run with -race).
func TestConcurrentHammer(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func(testing.TB, Policy) Store) {
		s := open(t, Policy{DigestDepth: 2})
		h := testHolder(t, 1, nil)
		var es []*Entry
		for i := range 200 {
			es = append(es, mustPublish(t, h, i%50, uint64(1+i/50), t0.Add(time.Hour)))
		}
		w := s.Watch(lookupN(1), lookupN(2))
		done := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := g; i < len(es); i += 4 {
					_, _ = s.Apply(t0, es[i])
					_, _ = s.Lookup(t0, es[i].Lookup)
					_, _, _ = s.Get(es[i].ID())
					_ = s.Bucket(1, uint32(i%16))
				}
			})
		}
		go func() { wg.Wait(); close(done) }()
		for {
			select {
			case <-w.C:
				continue
			case <-done:
			}
			break
		}
		w.Close()
		if s.Len() != 50 {
			t.Fatalf("len %d", s.Len())
		}
		for i := range 50 {
			e, ok, _ := s.Get(h.EntryID(lookupN(i)))
			if !ok || e.Version != 4 {
				t.Fatalf("entry %d: not the newest version", i)
			}
		}
	})
}

package locator

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// benchEntries signs n entries quickly (one entry key, distinct lookups,
// a realistic 140-byte sealed part).
func benchEntries(tb testing.TB, seed uint64, n int) []*Entry {
	var kseed [32]byte
	binary.BigEndian.PutUint64(kseed[:], seed)
	key := ed25519.NewKeyFromSeed(kseed[:])
	r := rand.New(rand.NewPCG(seed, 9))
	sealed := make([]byte, 140)
	out := make([]*Entry, n)
	for i := range out {
		var lk LookupKey
		binary.BigEndian.PutUint64(lk[:], seed)
		binary.BigEndian.PutUint64(lk[8:], uint64(i))
		for j := range sealed {
			sealed[j] = byte(r.Uint32())
		}
		e, err := NewEntry(lk, key, 1, t0.Add(365*24*time.Hour), false, sealed)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = e
	}
	return out
}

func perSecond(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkVerify: Ed25519 verification of one entry.
func BenchmarkVerify(b *testing.B) {
	es := benchEntries(b, 1, 1024)
	i := 0
	for b.Loop() {
		if !es[i%len(es)].VerifySignature() {
			b.Fatal("bad signature")
		}
		i++
	}
	perSecond(b, i)
}

// BenchmarkMergeVerify: Apply of new entries into a MemStore, signature
// verification included (the cost a replica pays per new write).
func BenchmarkMergeVerify(b *testing.B) {
	es := benchEntries(b, 2, 20000)
	s, _ := NewMemStore(DefaultPolicy())
	i := 0
	for b.Loop() {
		if i%len(es) == 0 {
			b.StopTimer()
			s, _ = NewMemStore(DefaultPolicy())
			b.StartTimer()
		}
		if _, err := s.Apply(t0, es[i%len(es)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	perSecond(b, i)
}

// BenchmarkMergeOnly: Apply with the signature already in a shared
// VerifyCache (a simulated replica after the first), i.e. the merge itself.
func BenchmarkMergeOnly(b *testing.B) {
	es := benchEntries(b, 3, 20000)
	pol := Policy{VerifyCache: NewVerifyCache(len(es))}
	warm, _ := NewMemStore(pol)
	_, _ = warm.ApplyBatch(t0, es)
	s, _ := NewMemStore(pol)
	i := 0
	for b.Loop() {
		if i%len(es) == 0 {
			b.StopTimer()
			s, _ = NewMemStore(pol)
			b.StartTimer()
		}
		if _, err := s.Apply(t0, es[i%len(es)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	perSecond(b, i)
}

// BenchmarkStoreWrite: writes per second; bolt one fsync per Apply, and
// batches of 1000 per commit.
func BenchmarkStoreWrite(b *testing.B) {
	const batch = 1000
	es := benchEntries(b, 4, 50000)
	pol := Policy{VerifyCache: NewVerifyCache(len(es))}
	warm, _ := NewMemStore(pol)
	_, _ = warm.ApplyBatch(t0, es) // verification is measured elsewhere
	open := map[string]func() Store{
		"mem": func() Store { s, _ := NewMemStore(pol); return s },
		"bolt": func() Store {
			s, err := OpenBoltStore(filepath.Join(b.TempDir(), fmt.Sprint(time.Now().UnixNano())), pol)
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, name := range []string{"mem", "bolt"} {
		b.Run(name+"/single", func(b *testing.B) {
			s := open[name]()
			i := 0
			for b.Loop() {
				if i > 0 && i%len(es) == 0 {
					b.StopTimer()
					s.Close()
					s = open[name]()
					b.StartTimer()
				}
				if _, err := s.Apply(t0, es[i%len(es)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			s.Close()
			perSecond(b, i)
		})
		b.Run(name+"/batch1000", func(b *testing.B) {
			s := open[name]()
			i := 0
			for b.Loop() {
				if i > 0 && i%len(es) == 0 {
					b.StopTimer()
					s.Close()
					s = open[name]()
					b.StartTimer()
				}
				j := i % len(es)
				if _, err := s.ApplyBatch(t0, es[j:j+batch]); err != nil {
					b.Fatal(err)
				}
				i += batch
			}
			s.Close()
			perSecond(b, i)
		})
	}
}

// BenchmarkStoreRead: Get by id and Lookup by key over 50,000 entries.
func BenchmarkStoreRead(b *testing.B) {
	es := benchEntries(b, 5, 50000)
	pol := Policy{VerifyCache: NewVerifyCache(len(es))}
	mem, _ := NewMemStore(pol)
	_, _ = mem.ApplyBatch(t0, es)
	bolt, err := OpenBoltStore(filepath.Join(b.TempDir(), "read.db"), pol)
	if err != nil {
		b.Fatal(err)
	}
	defer bolt.Close()
	_, _ = bolt.ApplyBatch(t0, es)
	for _, st := range []struct {
		name string
		s    Store
	}{{"mem", mem}, {"bolt", bolt}} {
		b.Run(st.name+"/get", func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, ok, _ := st.s.Get(es[(i*7919)%len(es)].ID()); !ok {
					b.Fatal("missing")
				}
				i++
			}
			perSecond(b, i)
		})
		b.Run(st.name+"/lookup", func(b *testing.B) {
			i := 0
			for b.Loop() {
				if got, _ := st.s.Lookup(t0, es[(i*7919)%len(es)].Lookup); len(got) != 1 {
					b.Fatal("missing")
				}
				i++
			}
			perSecond(b, i)
		})
	}
}

// BenchmarkBoltBytesPerEntry reports the bolt file size per stored entry
// for 100,000 entries (and the entries' own encoded size for comparison).
func BenchmarkBoltBytesPerEntry(b *testing.B) {
	const n = 100_000
	es := benchEntries(b, 6, n)
	pol := Policy{VerifyCache: NewVerifyCache(n)}
	warm, _ := NewMemStore(pol)
	_, _ = warm.ApplyBatch(t0, es)
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "size.db")
		s, err := OpenBoltStore(path, pol)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i += 1000 {
			if _, err := s.ApplyBatch(t0, es[i:i+1000]); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/n, "file-B/entry")
		b.ReportMetric(float64(es[0].Size()), "encoded-B/entry")
	}
}

// BenchmarkMemStoreOverhead reports the heap a MemStore adds per entry for
// 100,000 entries it shares with other replicas (the Entry itself not
// counted: sim holds one per write for all its replicas), and the Entry's
// own heap size.
func BenchmarkMemStoreOverhead(b *testing.B) {
	const n = 100_000
	es := benchEntries(b, 7, n)
	pol := Policy{VerifyCache: NewVerifyCache(n)}
	warm, _ := NewMemStore(pol)
	_, _ = warm.ApplyBatch(t0, es)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, _ := NewMemStore(pol)
		_, _ = s.ApplyBatch(t0, es)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "store-B/entry")
		runtime.KeepAlive(s)
	}
}

package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func benchAppend(b *testing.B, cfg Config) {
	dir := b.TempDir()
	path := filepath.Join(dir, FileName)
	l, err := Open(path, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := Event{Actor: "user:alice", Action: ActionLookup, Purpose: "safeguarding", Count: 2, Outcome: OutcomeOK, Subjects: l.Refs(lookupKey(1))}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendSync is the durable path: one fsync an event.
func BenchmarkAppendSync(b *testing.B) { benchAppend(b, Config{}) }

// BenchmarkAppendSigned adds an Ed25519 signature an event.
func BenchmarkAppendSigned(b *testing.B) { benchAppend(b, Config{Signer: testKey}) }

// BenchmarkAppendNoSync isolates encoding and hashing from the disk.
func BenchmarkAppendNoSync(b *testing.B) { benchAppend(b, Config{NoSync: true}) }

// BenchmarkVerify10k verifies a 10,000-event unsigned log.
func BenchmarkVerify10k(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, FileName)
	l, err := Open(path, Config{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		l.Append(Event{Actor: "user:alice", Action: ActionLookup, Purpose: "safeguarding", Count: 2, Outcome: OutcomeOK, Subjects: l.Refs(lookupKey(i))})
	}
	l.Close()
	data, _ := os.ReadFile(path)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendSyncParallel is durable appends from many goroutines, where
// group commit shares one fsync among the lines that arrive during it.
func BenchmarkAppendSyncParallel(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), FileName), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := Event{Actor: "user:alice", Action: ActionLookup, Purpose: "safeguarding", Count: 2, Outcome: OutcomeOK, Subjects: l.Refs(lookupKey(1))}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

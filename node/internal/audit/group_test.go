package audit

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// TestGroupCommitDurable: many concurrent durable appends, with Close
// called in the middle. Every acknowledged append is in the file, in index
// order, and the file holds nothing else.
func TestGroupCommitDurable(t *testing.T) {
	l, path := openTest(t, nil)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	var acked atomic.Int64
	var maxIndex atomic.Int64
	maxIndex.Store(-1)
	start := make(chan struct{})
	half := make(chan struct{})
	var halfOnce sync.Once
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				r, err := l.Append(Event{Actor: "user:w", Action: ActionLookup, Count: i, Outcome: OutcomeOK})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					halfOnce.Do(func() { close(half) })
					return
				}
				if acked.Add(1) == workers*each/2 {
					halfOnce.Do(func() { close(half) })
				}
				for {
					m := maxIndex.Load()
					if int64(r.Index) <= m || maxIndex.CompareAndSwap(m, int64(r.Index)) {
						break
					}
				}
			}
		}()
	}
	close(start)
	<-half // let half of them land, then close under the rest
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	b, _ := os.ReadFile(path)
	head, err := Verify(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if int64(head.Size) != acked.Load() || int64(head.Size) != maxIndex.Load()+1 {
		t.Fatalf("file has %d events; %d acknowledged, highest index %d", head.Size, acked.Load(), maxIndex.Load())
	}
	t.Logf("%d of %d appends acknowledged before Close", acked.Load(), workers*each)
}

// TestWriteFailureBreaksLog: when the disk fails, the append that hit it and
// every later one fail with ErrBroken, and Head still reports only what is
// durable.
func TestWriteFailureBreaksLog(t *testing.T) {
	l, _ := openTest(t, nil)
	if _, err := l.Append(Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK}); err != nil {
		t.Fatal(err)
	}
	before := l.Head()
	l.mu.Lock()
	l.mu.f.Close() // the disk goes away under the log
	l.mu.Unlock()
	for i := 0; i < 2; i++ {
		if _, err := l.Append(Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK}); !errors.Is(err, ErrBroken) {
			t.Fatalf("append %d after failure: %v", i, err)
		}
	}
	if h := l.Head(); h.Size != before.Size || h.Root != before.Root {
		t.Fatalf("head moved to %d after a failed write", h.Size)
	}
	if _, err := l.InclusionProof(1, 2); !errors.Is(err, ErrRange) {
		t.Fatalf("proof over a non-durable line: %v", err)
	}
}

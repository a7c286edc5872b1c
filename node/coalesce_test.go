package node

import (
	"context"
	"sync"
	"testing"
	"time"
)

// slowTokenizer counts calls and takes a little while, so that concurrent
// callers pile up behind a running batch.
type slowTokenizer struct {
	fakeTokenizer
	mu    sync.Mutex
	calls int
	sizes []int
}

func (s *slowTokenizer) Keys(ctx context.Context, ev Evaluator, purpose string, nums []string) ([]Keys, error) {
	s.mu.Lock()
	s.calls++
	s.sizes = append(s.sizes, len(nums))
	s.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // stands in for the module's work, not a test wait
	return s.fakeTokenizer.Keys(ctx, ev, purpose, nums)
}

// TestCoalescerHammer: many concurrent single-number calls get exactly the
// keys a direct call gives, in fewer tokenizer calls.
func TestCoalescerHammer(t *testing.T) {
	inner := &slowTokenizer{}
	c := newCoalescer(inner, nil, 64)
	nums := syntheticNumbers(200)
	direct, _ := (&fakeTokenizer{}).Keys(context.Background(), nil, "safeguarding", nums)
	var wg sync.WaitGroup
	errs := make(chan string, len(nums))
	for i := range nums {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			purpose := "safeguarding"
			ks, err := c.Keys(context.Background(), purpose, nums[i:i+1])
			if err != nil || len(ks) != 1 || ks[0] != direct[i] {
				errs <- "wrong keys"
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	inner.mu.Lock()
	calls, sizes := inner.calls, inner.sizes
	inner.mu.Unlock()
	if calls >= len(nums) {
		t.Fatalf("%d calls for %d numbers: nothing coalesced", calls, len(nums))
	}
	for _, s := range sizes {
		if s > 64 {
			t.Fatalf("batch of %d exceeds the maximum", s)
		}
	}
	t.Logf("%d numbers in %d calls", len(nums), calls)
	// The state is idle again: a lone call runs at once.
	if ks, err := c.Keys(context.Background(), "safeguarding", nums[:1]); err != nil || ks[0] != direct[0] {
		t.Fatal("lone call after the hammer")
	}
}

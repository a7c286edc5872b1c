package node

import (
	"context"
	"fmt"
	"sync"
)

// coalescer batches concurrent small Keys calls of one purpose into a
// single call of the wrapped Tokenizer, the way a database group-commits:
// while one batch is being tokenised, later callers join the next batch,
// and the first of them runs it when the current one ends. It starts no
// goroutine and waits on no timer, so a lone caller pays nothing.
//
// Why: a token's cost is dominated by blinding and proof verification in
// the wasm module, and one proof covers a whole batch (see BENCHMARKS.md:
// about 8 ms per token alone, 3.3 ms in batches of 256), so concurrent
// locates are cheaper together.
type coalescer struct {
	Tokenizer
	ev  Evaluator // the node's own, passed on every call
	max int

	mu    sync.Mutex
	state map[string]*coalesceState // by purpose; REQUIRES: mu
}

type coalesceState struct {
	running bool
	next    *coalesceBatch
}

type coalesceBatch struct {
	nums  []string
	start chan struct{} // closed when the batch's first caller may run it
	done  chan struct{} // closed when keys/err are set
	keys  []Keys
	err   error
}

func newCoalescer(t Tokenizer, ev Evaluator, max int) *coalescer {
	return &coalescer{Tokenizer: t, ev: ev, max: max, state: make(map[string]*coalesceState)}
}

// Keys tokenises through the wrapped Tokenizer with the node's evaluator.
func (c *coalescer) Keys(ctx context.Context, purpose string, nums []string) ([]Keys, error) {
	if len(nums) > c.max/2 {
		return c.Tokenizer.Keys(ctx, c.ev, purpose, nums)
	}
	c.mu.Lock()
	st := c.state[purpose]
	if st == nil {
		st = &coalesceState{}
		c.state[purpose] = st
	}
	if !st.running {
		st.running = true
		c.mu.Unlock()
		b := &coalesceBatch{nums: nums, done: make(chan struct{})}
		c.run(ctx, purpose, b)
		c.finish(st)
		return b.keys, b.err
	}
	if st.next != nil && len(st.next.nums)+len(nums) > c.max {
		c.mu.Unlock()
		return c.Tokenizer.Keys(ctx, c.ev, purpose, nums) // next batch full: go alone
	}
	leader := st.next == nil
	if leader {
		st.next = &coalesceBatch{start: make(chan struct{}), done: make(chan struct{})}
	}
	b := st.next
	off := len(b.nums)
	b.nums = append(b.nums, nums...)
	c.mu.Unlock()
	if leader {
		<-b.start // the running batch ends within the tokenizer's own bounds
		c.run(ctx, purpose, b)
		c.finish(st)
	} else {
		select {
		case <-b.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	return b.keys[off : off+len(nums)], nil
}

// run tokenises a batch; one caller's cancellation must not fail the
// others' numbers, so the batch runs without the caller's cancellation.
func (c *coalescer) run(ctx context.Context, purpose string, b *coalesceBatch) {
	c.mu.Lock()
	nums := b.nums // no one joins a batch once it has left st.next
	c.mu.Unlock()
	b.keys, b.err = c.Tokenizer.Keys(context.WithoutCancel(ctx), c.ev, purpose, nums)
	if b.err == nil && len(b.keys) != len(nums) {
		b.err = fmt.Errorf("node: tokenizer returned %d keys for %d numbers", len(b.keys), len(nums))
	}
	close(b.done)
}

// finish hands the purpose to the next batch, if any.
func (c *coalescer) finish(st *coalesceState) {
	c.mu.Lock()
	nb := st.next
	st.next = nil
	if nb == nil {
		st.running = false
	}
	c.mu.Unlock()
	if nb != nil {
		close(nb.start)
	}
}

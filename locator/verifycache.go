package locator

import "sync"

// VerifyCache is a bounded set of entry encodings (by SHA-256) whose
// signatures verified. Sharing one among stores in one process makes each
// write cost one verification however many replicas apply it. It is keyed
// by the full 256-bit hash of the encoding, so a hit stands for the exact
// bytes that verified. Safe for concurrent use; the oldest entries are
// evicted first.
type VerifyCache struct {
	mu   sync.Mutex
	set  map[[32]byte]struct{}
	ring [][32]byte
	next int
}

// NewVerifyCache returns a cache of up to capacity encodings (at least 1).
func NewVerifyCache(capacity int) *VerifyCache {
	capacity = max(capacity, 1)
	return &VerifyCache{set: make(map[[32]byte]struct{}, capacity), ring: make([][32]byte, 0, capacity)}
}

func (c *VerifyCache) has(sum [32]byte) bool {
	c.mu.Lock()
	_, ok := c.set[sum]
	c.mu.Unlock()
	return ok
}

func (c *VerifyCache) add(sum [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[sum]; ok {
		return
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, sum)
	} else {
		delete(c.set, c.ring[c.next])
		c.ring[c.next] = sum
		c.next = (c.next + 1) % len(c.ring)
	}
	c.set[sum] = struct{}{}
}

// Len returns the number of remembered encodings.
func (c *VerifyCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.set)
}

package locator

import "sync"

// storeState is what every Store keeps beside its entries, whatever holds
// them: the policy, the watchers, and under mu the digest, the live-entry
// count and the counters. MemStore and BoltStore embed it, so the parts of
// the Store interface that read only this state are written once.
type storeState struct {
	policy Policy
	hub    *watchHub

	mu       sync.RWMutex // guards the fields below and the embedding store's entries
	closed   bool
	dig      *digest
	n        int
	counters Counters
}

func newStoreState(p Policy) storeState {
	return storeState{policy: p, hub: newWatchHub(p.WatchBuffer), dig: newDigest(p.DigestDepth)}
}

// Len implements Store.
func (s *storeState) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

// Counters implements Store.
func (s *storeState) Counters() Counters {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.counters
}

// Watch implements Store.
func (s *storeState) Watch(keys ...LookupKey) *Watch { return s.hub.add(keys) }

// DigestDepth implements Store.
func (s *storeState) DigestDepth() int { return s.policy.DigestDepth }

// Bucket implements Store.
func (s *storeState) Bucket(level int, index uint32) Bucket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dig.bucket(level, index)
}

package locator

import (
	"errors"
	"fmt"
	"time"
)

// Policy is the federation-wide acceptance policy of a Store. Every node of a
// federation must use the same values, or replicas disagree on what exists.
type Policy struct {
	// MaxRetention bounds Expires: an entry expiring later than
	// now + MaxRetention + MaxFutureSkew is refused. Default 10 years.
	MaxRetention time.Duration
	// MaxFutureSkew tolerates clock differences between nodes when checking
	// MaxRetention (expiry itself is checked against the caller's now).
	// Default 5 minutes.
	MaxFutureSkew time.Duration
	// MaxEntrySize bounds an entry's encoding, at most MaxEncodedSize.
	// Default 1024 bytes.
	MaxEntrySize int
	// DigestDepth is the number of levels below the root of the digest tree
	// (fanout 16): 16^DigestDepth leaf buckets. Memory per store is about
	// 16^DigestDepth × 44 bytes (1..6; default 4, ≈ 3 MB). Replicas with
	// different depths still reconcile (the protocol uses the smaller).
	// Simulations of thousands of small replicas should use 2; replicas
	// of about 10^6 entries reconcile ~20 % cheaper with 5 (≈ 45 MB).
	DigestDepth int
	// WatchBuffer is the channel capacity of each Watch. Default 64.
	WatchBuffer int
	// VerifyCache, if set, remembers encodings whose signature verified,
	// so that stores sharing it (thousands of simulated replicas in one
	// process) verify each write once. Default nil: every store verifies.
	VerifyCache *VerifyCache
}

// DefaultPolicy returns the default policy.
func DefaultPolicy() Policy {
	return Policy{
		MaxRetention:  10 * 365 * 24 * time.Hour,
		MaxFutureSkew: 5 * time.Minute,
		MaxEntrySize:  1024,
		DigestDepth:   4,
		WatchBuffer:   64,
	}
}

// withDefaults fills zero fields and validates.
func (p Policy) withDefaults() (Policy, error) {
	d := DefaultPolicy()
	if p.MaxRetention == 0 {
		p.MaxRetention = d.MaxRetention
	}
	if p.MaxFutureSkew == 0 {
		p.MaxFutureSkew = d.MaxFutureSkew
	}
	if p.MaxEntrySize == 0 {
		p.MaxEntrySize = d.MaxEntrySize
	}
	if p.DigestDepth == 0 {
		p.DigestDepth = d.DigestDepth
	}
	if p.WatchBuffer == 0 {
		p.WatchBuffer = d.WatchBuffer
	}
	var errs []error
	if p.MaxRetention < 0 || p.MaxFutureSkew < 0 {
		errs = append(errs, errors.New("negative retention or skew"))
	}
	if p.MaxEntrySize < headerSize || p.MaxEntrySize > MaxEncodedSize {
		errs = append(errs, fmt.Errorf("max entry size %d outside %d..%d", p.MaxEntrySize, headerSize, MaxEncodedSize))
	}
	if p.DigestDepth < 1 || p.DigestDepth > MaxDigestDepth {
		errs = append(errs, fmt.Errorf("digest depth %d outside 1..%d", p.DigestDepth, MaxDigestDepth))
	}
	if p.WatchBuffer < 1 {
		errs = append(errs, fmt.Errorf("watch buffer %d < 1", p.WatchBuffer))
	}
	if err := errors.Join(errs...); err != nil {
		return p, fmt.Errorf("locator: invalid policy: %w", err)
	}
	return p, nil
}

// check applies the policy to an entry at time now (signature included).
func (p *Policy) check(now time.Time, e *Entry) Reason {
	if e.Size() > p.MaxEntrySize {
		return ReasonTooLarge
	}
	if e.Expires <= now.Unix() {
		return ReasonExpired
	}
	if e.Expires > now.Add(p.MaxRetention+p.MaxFutureSkew).Unix() {
		return ReasonRetentionTooLong
	}
	if p.VerifyCache != nil && e.init && p.VerifyCache.has(e.sum) {
		return ReasonNone
	}
	if !e.VerifySignature() {
		return ReasonBadSignature
	}
	if p.VerifyCache != nil && e.init {
		p.VerifyCache.add(e.sum)
	}
	return ReasonNone
}

package sim

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear histogram of durations at microsecond resolution:
// exact below 64 µs, then 64 buckets per power of two (relative error
// below 1.6 %). Deterministic and mergeable; memory grows with the largest
// value recorded (about 8 KB for values up to a day).
type hist struct {
	counts []uint64
	n      uint64
	max    int64 // ns
	sum    float64
}

const histSub = 64

func histIndex(us uint64) int {
	if us < histSub {
		return int(us)
	}
	shift := bits.Len64(us) - 7 // us>>shift in [64, 127]
	return histSub*(shift+1) + int(us>>uint(shift)) - histSub
}

// histLower returns the smallest value (µs) of bucket i and its width.
func histLower(i int) (lo, width uint64) {
	if i < histSub {
		return uint64(i), 1
	}
	shift := i/histSub - 1
	m := uint64(i%histSub + histSub)
	return m << uint(shift), 1 << uint(shift)
}

func (h *hist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := histIndex(uint64(d / time.Microsecond))
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.n++
	h.sum += float64(d)
	if int64(d) > h.max {
		h.max = int64(d)
	}
}

// quantile returns the q-quantile (0 < q ≤ 1) as the midpoint of its
// bucket, in nanoseconds; 0 for an empty histogram.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var c uint64
	for i, n := range h.counts {
		c += n
		if c >= rank {
			lo, w := histLower(i)
			v := time.Duration(lo)*time.Microsecond + time.Duration(w)*time.Microsecond/2
			if int64(v) > h.max {
				v = time.Duration(h.max)
			}
			return v
		}
	}
	return time.Duration(h.max)
}

// fractionAbove returns the fraction of values above d (bucket
// resolution: a bucket counts as above when its lower bound is ≥ d).
func (h *hist) fractionAbove(d time.Duration) float64 {
	if h.n == 0 {
		return 0
	}
	var c uint64
	for i, n := range h.counts {
		if lo, _ := histLower(i); time.Duration(lo)*time.Microsecond >= d {
			c += n
		}
	}
	return round6(float64(c) / float64(h.n))
}

// Percentiles summarises a distribution of durations, in milliseconds.
type Percentiles struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	// Over2s is the fraction of values of 2 s or more: for time to every
	// node, the entries that push did not carry everywhere and that
	// waited for anti-entropy.
	Over2s float64 `json:"fraction_over_2s"`
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func (h *hist) summary() Percentiles {
	if h.n == 0 {
		return Percentiles{}
	}
	return Percentiles{
		Count: h.n,
		Mean:  round3(h.sum / float64(h.n) / float64(time.Millisecond)),
		P50:   ms(h.quantile(0.50)),
		P90:   ms(h.quantile(0.90)),
		P99:   ms(h.quantile(0.99)),
		Max:   ms(time.Duration(h.max)),

		Over2s: h.fractionAbove(2 * time.Second),
	}
}

package simnet

import (
	"fmt"
	"time"
)

// CPUPool is a set of processors that every node shares — the nodes of a
// real-node comparison, which run as agents in one process on one
// machine. Each received message is a job that occupies one processor for
// the pool's service time; jobs are served first come, first served by
// arrival on the first processor free, so a burst of messages anywhere
// delays every message behind it, the way one busy CPU delays every agent
// on it (an M/G/C queue, where independent per-link latencies cannot
// correlate anything).
//
// Serve must be called in non-decreasing order of arrival time (the
// simulator calls it from its event loop, at each message's arrival),
// which is what makes the queue FIFO by arrival.
type CPUPool struct {
	service int64
	// free is when each processor is next idle (virtual ns).
	free []int64
	last int64
	// Jobs, Busy, Wait and MaxWait are totals over the run: jobs served,
	// processor time they took, time they waited for a processor, and the
	// longest wait (virtual ns).
	Jobs          uint64
	Busy, Wait    int64
	MaxWait       int64
	outOfOrderErr error
}

// NewCPUPool returns a pool of cpus processors (≥ 1) on which each job
// takes service (≥ 0; 0 makes every job finish at its arrival).
func NewCPUPool(cpus int, service time.Duration) (*CPUPool, error) {
	if cpus < 1 || service < 0 {
		return nil, fmt.Errorf("simnet: CPU pool needs ≥ 1 processors and a service time ≥ 0, got %d and %v", cpus, service)
	}
	return &CPUPool{service: int64(service), free: make([]int64, cpus)}, nil
}

// CPUs returns the number of processors.
func (p *CPUPool) CPUs() int { return len(p.free) }

// Service returns the time each job takes.
func (p *CPUPool) Service() time.Duration { return time.Duration(p.service) }

// Serve queues a job arriving at virtual time at and returns when it is
// done: at, or when the first processor frees up if later, plus the
// service time. An arrival earlier than the previous one is served as if
// it arrived with it (the queue never serves out of order) and recorded in
// Err.
func (p *CPUPool) Serve(at int64) int64 {
	if at < p.last {
		if p.outOfOrderErr == nil {
			p.outOfOrderErr = fmt.Errorf("simnet: CPU pool job arrived at %d after one at %d", at, p.last)
		}
		at = p.last
	}
	p.last = at
	c := 0
	for i, f := range p.free {
		if f < p.free[c] {
			c = i
		}
	}
	start := max(at, p.free[c])
	done := start + p.service
	p.free[c] = done
	wait := start - at
	p.Jobs++
	p.Busy += p.service
	p.Wait += wait
	p.MaxWait = max(p.MaxWait, wait)
	return done
}

// Err reports a call of Serve out of arrival order (a bug in the caller),
// or nil.
func (p *CPUPool) Err() error { return p.outOfOrderErr }

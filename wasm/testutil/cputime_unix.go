//go:build unix

package testutil

import (
	"syscall"
	"time"
)

// CPUTime is the process's user+system CPU time. Benchmarks report it next
// to wall time because the shared build machine is often oversubscribed,
// which inflates wall time but not CPU time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

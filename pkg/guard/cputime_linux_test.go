//go:build linux

package guard

import (
	"syscall"
	"testing"
	"time"
)

// processCPU returns the user+system CPU time of the process. Benchmarks
// report it per operation as "cpu-ns/op", which stays meaningful on a
// machine shared with other work (wall time then includes time spent
// descheduled).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, ops int) {
	if ops > 0 {
		b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(ops), "cpu-ns/op")
	}
}

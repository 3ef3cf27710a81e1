//go:build unix

package wasmhost_test

import "syscall"

// processCPU returns user+system CPU time of the test process in ns. On a
// shared, oversubscribed machine it measures cost better than wall time.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

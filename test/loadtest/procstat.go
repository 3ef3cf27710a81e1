package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of utime/stime in /proc/<pid>/stat. The kernel reports
// these in USER_HZ, which is 100 on every Linux architecture Go supports
// (sysconf(_SC_CLK_TCK)); reading it would need cgo.
const userHZ = 100

// ParseProcStat returns utime+stime from the contents of /proc/<pid>/stat
// (proc(5): fields 14 and 15, in clock ticks). The command name (field 2)
// is parenthesised and may contain spaces and parentheses, so fields are
// counted from the last ')'.
func ParseProcStat(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("proc stat: no ')' after the command name")
	}
	fields := bytes.Fields(stat[end+1:])
	// fields[0] is field 3 (state); utime is field 14, stime field 15.
	const utimeIdx, stimeIdx = 14 - 3, 15 - 3
	if len(fields) <= stimeIdx {
		return 0, fmt.Errorf("proc stat: %d fields after the command name, want at least %d", len(fields), stimeIdx+1)
	}
	var total uint64
	for _, i := range []int{utimeIdx, stimeIdx} {
		n, err := strconv.ParseUint(string(fields[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc stat: field %d: %w", i+3, err)
		}
		if total+n < total {
			return 0, errors.New("proc stat: tick count overflows")
		}
		total += n
	}
	const tick = time.Second / userHZ
	if total > uint64(math.MaxInt64/tick) {
		return 0, fmt.Errorf("proc stat: %d ticks overflow a duration", total)
	}
	return time.Duration(total) * tick, nil
}

// ProcessCPU returns the CPU time (user+system, all threads) process pid
// has used so far.
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read proc stat: %w", err)
	}
	return ParseProcStat(data)
}

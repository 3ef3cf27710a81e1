package main

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the q-quantile (0 < q <= 1) of samples by the
// nearest-rank method: the smallest sample such that at least q of all
// samples are <= it. samples must be sorted ascending; an empty slice
// gives 0.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if q <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Latencies summarises one measured window.
type Latencies struct {
	Count    int
	P50, P99 time.Duration
	Max      time.Duration
	Mean     time.Duration
}

// Summarize sorts samples in place and summarises them.
func Summarize(samples []time.Duration) Latencies {
	if len(samples) == 0 {
		return Latencies{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	return Latencies{
		Count: len(samples),
		P50:   Percentile(samples, 0.50),
		P99:   Percentile(samples, 0.99),
		Max:   samples[len(samples)-1],
		Mean:  sum / time.Duration(len(samples)),
	}
}

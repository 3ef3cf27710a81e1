package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ms(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"single p50", ms(7), 0.5, 7 * time.Millisecond},
		{"single p99", ms(7), 0.99, 7 * time.Millisecond},
		{"odd p50", ms(1, 2, 3), 0.5, 2 * time.Millisecond},
		{"even p50 is the lower middle", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"1..100 p50", hundred, 0.5, 50 * time.Millisecond},
		{"1..100 p99", hundred, 0.99, 99 * time.Millisecond},
		{"1..100 p100", hundred, 1, 100 * time.Millisecond},
		{"q 0 is the minimum", ms(3, 4), 0, 3 * time.Millisecond},
		{"small n p99 is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Percentile(tt.sorted, tt.q))
		})
	}
}

func TestSummarize(t *testing.T) {
	got := Summarize(ms(5, 1, 4, 2, 3))
	assert.Equal(t, Latencies{Count: 5, P50: 3 * time.Millisecond, P99: 5 * time.Millisecond, Max: 5 * time.Millisecond, Mean: 3 * time.Millisecond}, got)
	assert.Equal(t, Latencies{}, Summarize(nil))
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{
			name: "plain",
			stat: "1234 (tollgate) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 8 0 100 0 0",
			want: 3 * time.Second,
		},
		{
			name: "command with spaces and parens",
			stat: "42 (a) b (c)) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0",
			want: 100 * time.Millisecond,
		},
		{name: "no paren", stat: "42 tollgate R 1", wantErr: true},
		{name: "truncated", stat: "42 (x) R 1 2 3", wantErr: true},
		{name: "not a number", stat: "42 (x) R 1 42 42 0 -1 0 0 0 0 0 x 3 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcStat([]byte(tt.stat))
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestProcessCPUOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := ProcessCPU(os.Getpid())
	require.NoError(t, err)
	// Burn CPU until the counter moves (it ticks every 10ms); bounded.
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		after, err := ProcessCPU(os.Getpid())
		require.NoError(t, err)
		if after > before {
			return
		}
	}
	t.Fatalf("process CPU did not advance (x=%d)", x)
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 9 0 0"))
	f.Add([]byte("1 ()) S"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseProcStat(data)
		if err == nil && d < 0 {
			t.Fatalf("negative CPU time %v", d)
		}
	})
}

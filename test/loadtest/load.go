package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Phases of one load cell.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// bodySeq numbers unique bodies across every cell of a run, so that a
// server measured at several concurrencies never sees a prompt twice.
var bodySeq atomic.Int64

// loadConfig describes one load cell: Concurrency closed-loop clients
// posting Body to URL, first for Warmup (not recorded), then for Duration.
type loadConfig struct {
	URL  string
	Body []byte
	// Unique numbers each request's body (withSeq): no two prompts alike.
	Unique      bool
	Header      http.Header
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration
	// MaxRequests bounds the requests of the whole cell (warm-up included);
	// the cell ends early when it is reached. 0 means 10 million.
	MaxRequests int64
	// OnWindowStart and OnWindowEnd run on the coordinating goroutine at the
	// edges of the measured window (to sample CPU counters).
	OnWindowStart, OnWindowEnd func() error
}

// loadResult is what one cell measured. Only requests that started and
// finished inside the measured window count.
type loadResult struct {
	Latencies Latencies
	OK        int
	Errors    int
	Window    time.Duration
	FirstErr  error
}

// RequestsPerSecond is OK requests over the measured window.
func (r loadResult) RequestsPerSecond() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.OK) / r.Window.Seconds()
}

// doRequest posts body and drains the response; any status but 200 is an error.
func doRequest(ctx context.Context, client *http.Client, url string, header http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d (%d bytes)", resp.StatusCode, n)
	}
	if n == 0 {
		return errors.New("empty response body")
	}
	return nil
}

// runLoad runs one cell. It returns early, with what it has, when ctx ends.
func runLoad(ctx context.Context, client *http.Client, cfg loadConfig) (loadResult, error) {
	if cfg.Concurrency < 1 {
		return loadResult{}, fmt.Errorf("concurrency %d: want >= 1", cfg.Concurrency)
	}
	if cfg.Duration <= 0 {
		return loadResult{}, fmt.Errorf("duration %v: want > 0", cfg.Duration)
	}
	maxRequests := cfg.MaxRequests
	if maxRequests <= 0 {
		maxRequests = 10_000_000
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var phase atomic.Int32
	var issued atomic.Int64
	type workerResult struct {
		samples  []time.Duration
		errors   int
		firstErr error
	}
	results := make([]workerResult, cfg.Concurrency)
	capReached := make(chan struct{})
	var capOnce sync.Once
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() {
			res := &results[w]
			res.samples = make([]time.Duration, 0, 4096)
			for phase.Load() != phaseStop && ctx.Err() == nil {
				if issued.Add(1) > maxRequests {
					capOnce.Do(func() { close(capReached) })
					return
				}
				startPhase := phase.Load()
				began := time.Now()
				body := cfg.Body
				if cfg.Unique {
					body = withSeq(body, bodySeq.Add(1))
				}
				err := doRequest(ctx, client, cfg.URL, cfg.Header, body)
				took := time.Since(began)
				if startPhase != phaseMeasure || phase.Load() != phaseMeasure {
					continue
				}
				if err != nil {
					res.errors++
					if res.firstErr == nil {
						res.firstErr = err
					}
					continue
				}
				res.samples = append(res.samples, took)
			}
		})
	}

	wait := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-capReached:
		}
	}
	wait(cfg.Warmup)
	var hookErr error
	if cfg.OnWindowStart != nil {
		hookErr = cfg.OnWindowStart()
	}
	windowStart := time.Now()
	phase.Store(phaseMeasure)
	wait(cfg.Duration)
	phase.Store(phaseStop)
	window := time.Since(windowStart)
	if cfg.OnWindowEnd != nil {
		hookErr = errors.Join(hookErr, cfg.OnWindowEnd())
	}
	wg.Wait()

	var all []time.Duration
	out := loadResult{Window: window}
	for _, r := range results {
		all = append(all, r.samples...)
		out.Errors += r.errors
		if out.FirstErr == nil {
			out.FirstErr = r.firstErr
		}
	}
	out.OK = len(all)
	out.Latencies = Summarize(all)
	if hookErr != nil {
		return out, fmt.Errorf("window hooks: %w", hookErr)
	}
	return out, ctx.Err()
}

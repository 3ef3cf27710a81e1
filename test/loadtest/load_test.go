package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunLoadCountsOnlyTheWindow(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("x-test") != "1" || len(body) != 3 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		served.Add(1)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var atStart, atEnd int64
	res, err := runLoad(ctx, srv.Client(), loadConfig{
		URL: srv.URL, Body: []byte("abc"), Header: http.Header{"X-Test": {"1"}},
		Concurrency: 3, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond,
		OnWindowStart: func() error { atStart = served.Load(); return nil },
		OnWindowEnd:   func() error { atEnd = served.Load(); return nil },
	})
	require.NoError(t, err)
	assert.Zero(t, res.Errors)
	assert.Positive(t, res.OK)
	assert.Positive(t, atStart, "warm-up requests happened before the window")
	// Every counted request was served inside the window; requests straddling
	// either edge (at most a few per worker) are served but not counted.
	assert.LessOrEqual(t, int64(res.OK), atEnd-atStart)
	assert.GreaterOrEqual(t, int64(res.OK), atEnd-atStart-3*3)
	assert.Less(t, int64(res.OK), served.Load())
	assert.GreaterOrEqual(t, res.Window, 200*time.Millisecond)
	assert.Equal(t, res.OK, res.Latencies.Count)
	assert.LessOrEqual(t, res.Latencies.P50, res.Latencies.P99)
	assert.InDelta(t, float64(res.OK)/res.Window.Seconds(), res.RequestsPerSecond(), 1e-9)
}

func TestRunLoadReportsErrorsAndHonoursTheCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("no"))
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := runLoad(ctx, srv.Client(), loadConfig{
		URL: srv.URL, Concurrency: 2, Duration: 10 * time.Second, MaxRequests: 50,
	})
	require.NoError(t, err)
	assert.Zero(t, res.OK)
	assert.Positive(t, res.Errors)
	assert.LessOrEqual(t, res.Errors, 50)
	require.Error(t, res.FirstErr)
	assert.Contains(t, res.FirstErr.Error(), "status 503")
	assert.Less(t, res.Window, 10*time.Second, "the cap ends the cell early")
}

func TestRunLoadRejectsBadConfig(t *testing.T) {
	_, err := runLoad(context.Background(), http.DefaultClient, loadConfig{Concurrency: 0, Duration: time.Second})
	assert.Error(t, err)
	_, err = runLoad(context.Background(), http.DefaultClient, loadConfig{Concurrency: 1})
	assert.Error(t, err)
}

func TestChatBody(t *testing.T) {
	for _, size := range []int{300, 2048, 4096} {
		body, err := chatBody(size)
		require.NoError(t, err)
		assert.Len(t, body, size)
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		require.NoError(t, json.Unmarshal(body, &req))
		assert.Equal(t, "gpt-4o-mini", req.Model)
		require.Len(t, req.Messages, 2)
		assert.Equal(t, "user", req.Messages[1].Role)
	}
	_, err := chatBody(10)
	assert.Error(t, err)

	body, err := chatBody(2048)
	require.NoError(t, err)
	a, b := withSeq(body, 1), withSeq(body, 9_876_543_210)
	assert.Len(t, a, 2048)
	assert.Len(t, b, 2048)
	assert.NotEqual(t, a, b)
	assert.Contains(t, string(a), "Request 0000000001: ")
	assert.Contains(t, string(b), "Request 9876543210: ")
	assert.True(t, json.Valid(b))
	assert.Contains(t, string(body), seqMark, "withSeq does not touch its input")
}

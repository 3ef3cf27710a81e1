package guard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/netfault"
)

func externalGuard(t *testing.T, url string, timeout time.Duration) *Guard {
	t.Helper()
	g, err := New(Config{External: &ExternalConfig{URL: url, APIKey: "k", Model: "omni-moderation-latest", Timeout: timeout}})
	require.NoError(t, err)
	return g
}

func TestCheckExternal(t *testing.T) {
	var got moderationRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "Bearer k", r.Header.Get("Authorization"))
		assert.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"modr-1","model":"omni-moderation-latest","results":[{"flagged":true,
			"categories":{"violence":true,"harassment":false},
			"category_scores":{"violence":0.91,"harassment":0.02}}]}`))
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fs, err := externalGuard(t, srv.URL, time.Second).CheckExternal(ctx, "some text")
	require.NoError(t, err)
	assert.Equal(t, moderationRequest{Model: "omni-moderation-latest", Input: "some text"}, got)
	assert.Equal(t, []Finding{{Detector: DetectorExternal, Type: "MODERATION_violence", Start: 0, End: 9, Score: 0.91}}, fs)
}

func TestCheckExternalFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	status := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	t.Cleanup(status.Close)
	_, err := externalGuard(t, status.URL, time.Second).CheckExternal(ctx, "x")
	assert.ErrorContains(t, err, "status 503")

	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"results":`))
	}))
	t.Cleanup(garbage.Close)
	_, err = externalGuard(t, garbage.URL, time.Second).CheckExternal(ctx, "x")
	assert.ErrorContains(t, err, "decode")

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	_, err = externalGuard(t, slow.URL, 50*time.Millisecond).CheckExternal(ctx, "x")
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	_, err = New(Config{})
	require.NoError(t, err)
	g, _ := New(Config{})
	_, err = g.CheckExternal(ctx, "x")
	assert.ErrorIs(t, err, ErrExternalDisabled)
}

// TestCheckExternalFrozenPeer: an endpoint that accepts and never answers
// (a hung moderation service) fails the call within the deadline derived
// from the ext_proc message timeout, before Envoy stops waiting.
func TestCheckExternalFrozenPeer(t *testing.T) {
	const messageTimeout = 200 * time.Millisecond
	timeout := ExternalTimeoutFor(messageTimeout)
	assert.Equal(t, 40*time.Millisecond, timeout)
	assert.Equal(t, 10*time.Millisecond, ExternalTimeoutFor(time.Millisecond), "never below 10ms")
	g := externalGuard(t, "http://"+netfault.FrozenPeer(t)+"/v1/moderations", timeout)
	require.True(t, g.HasExternal())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := g.CheckExternal(ctx, "x")
	elapsed := time.Since(start)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, elapsed, timeout, "it did wait on the peer")
	assert.Less(t, elapsed, messageTimeout)
}

// BenchmarkCheckExternal is one moderation call on a kept-alive loopback
// connection: what the external detector adds to a request besides the
// endpoint's own latency.
func BenchmarkCheckExternal(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"results":[{"flagged":false,"categories":{"violence":false},"category_scores":{"violence":0.01}}]}`))
	}))
	b.Cleanup(srv.Close)
	g, err := New(Config{Rules: map[string]Action{DetectorExternal: ActionBlock},
		External: &ExternalConfig{URL: srv.URL, Timeout: time.Second, Client: &http.Client{Timeout: time.Second}}})
	require.NoError(b, err)
	ctx := context.Background()
	text := "Please reply to [EMAIL_1] about my order, which has not arrived yet."
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.CheckExternal(ctx, text); err != nil {
			b.Fatal(err)
		}
	}
}

// Package extproctest runs the real `tollgate extproc` (extproc.Run, the
// same code as the binary) inside a test.
package extproctest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/extproc"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

// Start runs extproc.Run on cfg until the test ends, with env as the
// process environment (provider keys), and returns its ext_proc address.
// cfg should listen on ephemeral ports ("127.0.0.1:0").
func Start(t testing.TB, cfg *config.Config, env map[string]string) string {
	t.Helper()
	return StartAddrs(t, cfg, env).ExtProc
}

// Addrs are the addresses a started extproc listens on.
type Addrs struct {
	ExtProc string
	Admin   string // /metrics, /healthz, /readyz
}

// StartAddrs is Start returning the admin address too.
func StartAddrs(t testing.TB, cfg *config.Config, env map[string]string) Addrs {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- extproc.Run(ctx, cfg, extproc.RunOptions{
			Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnListening: func(e, a string) { ready <- Addrs{ExtProc: e, Admin: a} },
			Getenv:      func(k string) string { return env[k] },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("extproc.Run after cancel: %v", err)
		}
	})
	select {
	case addrs := <-ready:
		return addrs
	case err := <-done:
		t.Fatalf("extproc.Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("extproc did not start")
	}
	return Addrs{}
}

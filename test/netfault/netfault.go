// Package netfault provides network peers that misbehave, for fault tests
// of clients that must not wait longer than their budget.
package netfault

import (
	"net"
	"sync"
	"testing"
)

// FrozenPeer listens on a loopback port, accepts every connection and never
// answers: a hung Redis or embedder (as after SIGSTOP), not a dead one. It
// returns "127.0.0.1:port"; the listener and connections close with the test.
func FrozenPeer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("frozen peer: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

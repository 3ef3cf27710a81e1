// Package redistest starts a throwaway redis-server for tests.
//
// Each call starts its own server on a free loopback port with persistence
// disabled and stops it when the test ends. When redis-server is not on PATH
// the test is skipped, unless TOLLGATE_REQUIRE_REDIS=1 (set by `make test` and
// CI, after scripts/deps.sh installed it), in which case it fails.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is one running redis-server.
type Server struct {
	Addr string
	cmd  *exec.Cmd
}

// Start launches redis-server on a free port and registers its shutdown with t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("TOLLGATE_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server not found on PATH (run scripts/deps.sh): %v", err)
		}
		t.Skip("redis-server not on PATH; run scripts/deps.sh or `make test`")
	}
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		s, err := launch(t, bin, port)
		if err == nil {
			return s
		}
		t.Logf("redis-server on port %d: %v (retrying)", port, err)
	}
	t.Fatalf("could not start redis-server")
	return nil
}

// Stop kills the server early (to test behaviour while Redis is down).
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func launch(t testing.TB, bin string, port int) (*Server, error) {
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--protected-mode", "no",
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
				close(ready)
				signalled = true
			}
		}
		if !signalled {
			close(ready)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-ready:
	case <-ctx.Done():
		s.Stop()
		return nil, fmt.Errorf("redis-server did not become ready")
	}
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("redis-server not reachable: %w", err)
	}
	_ = conn.Close()
	t.Cleanup(s.Stop)
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// serverProcess is an ext_proc server running as a child process.
type serverProcess struct {
	cmd     *exec.Cmd
	addr    string // gRPC address
	logPath string // combined stdout/stderr (tollgate) or stderr (passthrough)
	exited  chan struct{}
	waitErr error
}

func (s *serverProcess) pid() int { return s.cmd.Process.Pid }

func (s *serverProcess) watch() {
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
}

// stop sends SIGTERM, waits up to 5s, then kills.
func (s *serverProcess) stop() error {
	if s == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-s.exited:
		return nil
	case <-t.C:
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("did not stop within 5s of SIGTERM; killed")
	}
}

// logTail returns the last bytes of the process log, for error messages.
func (s *serverProcess) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	const keep = 2000
	if len(data) > keep {
		data = data[len(data)-keep:]
	}
	return strings.TrimSpace(string(data))
}

// buildPassthrough compiles ./passthrough into dir.
func buildPassthrough(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "passthrough")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tollgate-dev/tollgate/test/loadtest/passthrough")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build passthrough: %w\n%s", err, out)
	}
	return bin, nil
}

// startPassthrough runs the passthrough binary on an ephemeral port and
// reads the address it prints.
func startPassthrough(ctx context.Context, bin, dir string) (*serverProcess, error) {
	logPath := filepath.Join(dir, "passthrough.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("passthrough log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("passthrough stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start passthrough: %w", err)
	}
	p := &serverProcess{cmd: cmd, logPath: logPath}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	p.watch()
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case line, ok := <-lines:
		addr, found := strings.CutPrefix(line, "listening on ")
		if !ok || !found {
			_ = p.stop()
			return nil, fmt.Errorf("passthrough did not report its address (got %q): %s", line, p.logTail())
		}
		p.addr = addr
		return p, nil
	case <-t.C:
		_ = p.stop()
		return nil, errors.New("passthrough did not start within 15s")
	case <-ctx.Done():
		_ = p.stop()
		return nil, ctx.Err()
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	return addr, nil
}

// startTollgate runs `tollgate extproc` with config on ephemeral ports and
// waits until /readyz answers 200 and the gRPC port accepts connections.
func startTollgate(ctx context.Context, bin, config, dir string) (*serverProcess, error) {
	extAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "tollgate.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("tollgate log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "extproc", "--config", config, "--extproc-addr", extAddr, "--admin-addr", adminAddr)
	cmd.Dir = dir // anything it writes relative to the working directory lands in the temp dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start tollgate: %w", err)
	}
	p := &serverProcess{cmd: cmd, addr: extAddr, logPath: logPath}
	p.watch()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 0; ; attempt++ {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("tollgate exited during start-up (%w): %s", p.waitErr, p.logTail())
		case <-ctx.Done():
			_ = p.stop()
			return nil, ctx.Err()
		default:
		}
		if ready(client, "http://"+adminAddr+"/readyz") && dialable(extAddr) {
			return p, nil
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return nil, fmt.Errorf("tollgate not ready within 20s (%d probes): %s", attempt+1, p.logTail())
		}
		time.Sleep(100 * time.Millisecond) // polling a child process, not test synchronisation
	}
}

func ready(client *http.Client, url string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

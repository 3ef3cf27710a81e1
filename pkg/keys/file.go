package keys

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// DefaultPollInterval is how often a FileBackend checks its file for
// changes made by other processes.
const DefaultPollInterval = 200 * time.Millisecond

// FileBackend keeps keys in an append-only JSONL file: one full record per
// line, the latest line of an id wins. Every write takes an exclusive flock
// on the file (processes sharing it serialise), catches up with lines other
// processes appended, appends one line and fsyncs before returning. Other
// processes see the change at their next poll.
type FileBackend struct {
	path string
	poll time.Duration

	mu     sync.Mutex
	f      *os.File
	offset int64          // bytes of the file applied to keys
	keys   map[string]Key // latest record per id
	ino    fileID
}

// FileOptions configure OpenFile.
type FileOptions struct {
	// Poll is how often the file is checked for other writers' changes
	// (default DefaultPollInterval).
	Poll time.Duration
}

// OpenFile opens (creating it, mode 0600) the key file at path and reads it.
func OpenFile(path string, opts FileOptions) (*FileBackend, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("key file: %w", err)
	}
	b := &FileBackend{path: path, poll: opts.Poll, f: f, keys: map[string]Key{}, ino: idOf(st)}
	if b.poll <= 0 {
		b.poll = DefaultPollInterval
	}
	if err := b.catchUp(); err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// catchUp applies the lines appended since the last call (b.mu held). A file
// that shrank or was replaced is read again from the start.
func (b *FileBackend) catchUp() error {
	st, err := os.Stat(b.path)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	id := idOf(st)
	if st.Size() < b.offset || id != b.ino {
		f, err := os.OpenFile(b.path, os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("reopen key file: %w", err)
		}
		b.f.Close()
		b.f, b.offset, b.keys, b.ino = f, 0, map[string]Key{}, id
	}
	if st.Size() == b.offset {
		return nil
	}
	buf := make([]byte, st.Size()-b.offset)
	n, err := b.f.ReadAt(buf, b.offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read key file: %w", err)
	}
	buf = buf[:n]
	// Apply complete lines only: a line still being written (no newline
	// yet) is read at the next call.
	end := bytes.LastIndexByte(buf, '\n') + 1
	sc := bufio.NewScanner(bytes.NewReader(buf[:end]))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var k Key
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil {
			return fmt.Errorf("key file %s: bad record (line %d of those after byte %d): %w", b.path, line, b.offset, err)
		}
		if k.ID == "" {
			return fmt.Errorf("key file %s: record without an id (line %d of those after byte %d)", b.path, line, b.offset)
		}
		b.keys[k.ID] = k
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read key file: %w", err)
	}
	b.offset += int64(end)
	return nil
}

// Put implements Backend.
func (b *FileBackend) Put(_ context.Context, k Key, prev string) error {
	line, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	line = append(line, '\n')
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := lock(b.f); err != nil {
		return fmt.Errorf("lock key file: %w", err)
	}
	defer func() { _ = unlock(b.f) }()
	if err := b.catchUp(); err != nil {
		return err
	}
	if err := checkPut(b.keys, k, prev); err != nil {
		return err
	}
	if _, err := b.f.Write(line); err != nil {
		return fmt.Errorf("append key file: %w", err)
	}
	if err := b.f.Sync(); err != nil {
		return fmt.Errorf("sync key file: %w", err)
	}
	b.keys[k.ID] = k
	b.offset += int64(len(line))
	return nil
}

// checkPut applies Put's rules against the current records.
func checkPut(keys map[string]Key, k Key, prev string) error {
	cur, ok := keys[k.ID]
	switch {
	case prev == "" && ok:
		return fmt.Errorf("%w: %q", ErrExists, k.ID)
	case prev == "":
		return nil
	case !ok:
		return fmt.Errorf("%w: %q", ErrNotFound, k.ID)
	case !cur.Revoked.IsZero():
		return fmt.Errorf("%w: %q", ErrRevoked, k.ID)
	case cur.SHA256 != prev:
		return fmt.Errorf("%w: %q", ErrConflict, k.ID)
	}
	return nil
}

// Load implements Backend.
func (b *FileBackend) Load(context.Context) ([]Key, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.catchUp(); err != nil {
		return nil, err
	}
	out := make([]Key, 0, len(b.keys))
	for _, k := range b.keys {
		out = append(out, k)
	}
	return out, nil
}

// Watch implements Backend: it polls the file's size and identity.
func (b *FileBackend) Watch(ctx context.Context, changed func()) {
	t := time.NewTicker(b.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := os.Stat(b.path)
		if err != nil {
			changed() // Load reports the error
			continue
		}
		b.mu.Lock()
		stale := st.Size() != b.offset || idOf(st) != b.ino
		b.mu.Unlock()
		if stale {
			changed()
		}
	}
}

// Close implements Backend.
func (b *FileBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.f.Close()
}

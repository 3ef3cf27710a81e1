package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxFileBytes  = 64 << 20
	DefaultFlushInterval = time.Second
	bufferBytes          = 64 << 10
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log is closed")

// Options configures Open.
type Options struct {
	// MaxFileBytes rotates to the next file before a record would make the
	// current one larger (default DefaultMaxFileBytes). A record larger than
	// the limit gets a file of its own.
	MaxFileBytes int64
	// FlushInterval: buffered records are written (and fsynced when Sync is
	// set) this often (default DefaultFlushInterval). Negative disables the
	// background flush: only Flush, rotation and Close write.
	FlushInterval time.Duration
	// Sync fsyncs the file on every flush.
	Sync bool
	// RedactedText keeps Record.RedactedText; by default it is dropped.
	RedactedText bool
}

// Log is an append-only, hash-chained audit log. It is safe for concurrent use.
type Log struct {
	dir  string
	opts Options

	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	num    int   // current file number
	size   int64 // bytes in the current file, buffered included
	seq    uint64
	prev   [sha256.Size]byte
	err    error // sticky write error
	closed bool

	stop chan struct{}
	done chan struct{}
}

var genesis [sha256.Size]byte

// FileName is the name of audit file number n.
func FileName(n int) string { return fmt.Sprintf("audit-%06d.jsonl", n) }

// Open opens (or creates) the audit log in dir and continues its chain from
// the last complete record. If the last file ends in a torn line (a crash
// cut a write short) it is left untouched as evidence and appending starts
// in a new file; Verify reports the torn line.
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: create dir: %w", err)
	}
	files, err := listFiles(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, opts: opts, num: 1, prev: genesis}
	if len(files) > 0 {
		last := files[len(files)-1]
		tail, err := lastRecord(dir, files)
		if err != nil {
			return nil, err
		}
		l.seq, l.prev = tail.seq, tail.hash
		l.num = last.num
		if tail.torn {
			l.num++
		}
	}
	if err := l.openFile(); err != nil {
		return nil, err
	}
	if opts.FlushInterval > 0 {
		l.stop, l.done = make(chan struct{}), make(chan struct{})
		go l.flushLoop()
	}
	return l, nil
}

func (l *Log) openFile() error {
	path := filepath.Join(l.dir, FileName(l.num))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("audit: stat %s: %w", path, err)
	}
	l.f, l.size = f, st.Size()
	if l.w == nil {
		l.w = bufio.NewWriterSize(f, bufferBytes)
	} else {
		l.w.Reset(f)
	}
	return nil
}

// Append adds rec to the log. The record is buffered; it reaches the file
// within FlushInterval, on Flush or on Close. Errors from an earlier
// background write are returned here (the log stops accepting records).
func (l *Log) Append(rec Record) error {
	if !l.opts.RedactedText {
		rec.RedactedText = ""
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	body, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("audit: encode record: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.err != nil {
		return l.err
	}
	line := l.encode(body)
	if l.size > 0 && l.size+int64(len(line)) > l.opts.MaxFileBytes {
		if err := l.rotate(); err != nil {
			l.err = err
			return err
		}
	}
	if _, err := l.w.Write(line); err != nil {
		l.err = fmt.Errorf("audit: write: %w", err)
		return l.err
	}
	l.size += int64(len(line))
	l.seq++
	l.prev = sha256.Sum256(line[:len(line)-1])
	return nil
}

// encode frames body (a JSON object) as one chained line ending in '\n'.
func (l *Log) encode(body []byte) []byte {
	line := make([]byte, 0, len(body)+64+64+64+24)
	line = append(line, `{"seq":`...)
	line = strconv.AppendUint(line, l.seq+1, 10)
	line = append(line, `,"prev":"`...)
	line = hex.AppendEncode(line, l.prev[:])
	line = append(line, '"')
	if inner := bytes.TrimSpace(body[1 : len(body)-1]); len(inner) > 0 {
		line = append(line, ',')
		line = append(line, inner...)
	}
	sum := sha256.Sum256(line)
	line = append(line, hashKey...)
	line = hex.AppendEncode(line, sum[:])
	line = append(line, '"', '}', '\n')
	return line
}

const hashKey = `,"hash":"`

// hashSuffixLen is len(`,"hash":"` + 64 hex + `"}`).
const hashSuffixLen = len(hashKey) + 2*sha256.Size + 2

func (l *Log) rotate() error {
	if err := l.flushLocked(); err != nil {
		return err
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("audit: close %s: %w", l.f.Name(), err)
	}
	l.num++
	return l.openFile()
}

func (l *Log) flushLocked() error {
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	if l.opts.Sync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("audit: sync: %w", err)
		}
	}
	return nil
}

// Flush writes buffered records to the file (and fsyncs with Options.Sync).
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.err != nil {
		return l.err
	}
	if err := l.flushLocked(); err != nil {
		l.err = err
	}
	return l.err
}

// Head returns the sequence number and hash of the last appended record
// (0 and 64 zeros for an empty log), to anchor the chain elsewhere.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, hex.EncodeToString(l.prev[:])
}

func (l *Log) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(l.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			if !l.closed && l.err == nil {
				if err := l.flushLocked(); err != nil {
					l.err = err
				}
			}
			l.mu.Unlock()
		}
	}
}

// Close flushes, fsyncs and closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	var errs []error
	if l.err == nil {
		if err := l.w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("audit: write: %w", err))
		}
	} else {
		errs = append(errs, l.err)
	}
	if err := l.f.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("audit: sync: %w", err))
	}
	if err := l.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit: close: %w", err))
	}
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		<-l.done
	}
	return errors.Join(errs...)
}

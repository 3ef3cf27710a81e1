package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testRecord(i int) Record {
	return Record{
		Time:      time.Date(2026, 11, 27, 7, 0, 0, i, time.UTC),
		RequestID: fmt.Sprintf("req-%d", i),
		Tenant:    "acme",
		KeyID:     "k1",
		Prompt:    "support-answer@3",
		Alias:     "auto",
		Tier:      "simple",
		Provider:  "openai",
		Model:     "gpt-4o-mini",
		TokensIn:  int64(100 + i),
		TokensOut: 20,
		CostUSD:   0.0000345,
		Cache:     "miss",
		Findings:  []Finding{{Type: "email", Path: "messages.1.content", Start: 4, End: 21, Action: "redact"}},
		Outcome:   "ok",
		Status:    200,
	}
}

func writeLog(t *testing.T, dir string, n int, opts Options) {
	t.Helper()
	l, err := Open(dir, opts)
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, l.Append(testRecord(i)))
	}
	require.NoError(t, l.Close())
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.SplitAfter(string(b), "\n")
}

func TestAppendVerify(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 500, Options{FlushInterval: -1})
	rep, err := Verify(dir)
	require.NoError(t, err)
	assert.True(t, rep.OK())
	assert.Equal(t, 500, rep.Records)
	assert.Equal(t, uint64(500), rep.HeadSeq)
	assert.Equal(t, 1, rep.Files)
	assert.Empty(t, rep.Torn)
}

func TestConcurrentAppend(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{MaxFileBytes: 16 << 10})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				assert.NoError(t, l.Append(testRecord(g*1000+i)))
			}
		}()
	}
	wg.Wait()
	seq, head := l.Head()
	require.NoError(t, l.Close())
	rep, err := Verify(dir)
	require.NoError(t, err)
	assert.Equal(t, 800, rep.Records)
	assert.Equal(t, seq, rep.HeadSeq)
	assert.Equal(t, head, rep.Head)
	assert.Greater(t, rep.Files, 1)
}

func TestRecordContent(t *testing.T) {
	tests := []struct {
		name     string
		redacted bool
		want     string
	}{
		{"redacted text dropped by default", false, ""},
		{"redacted text kept when asked", true, "my mail is [EMAIL]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, Options{FlushInterval: -1, RedactedText: tc.redacted})
			require.NoError(t, err)
			r := testRecord(1)
			r.RedactedText = "my mail is [EMAIL]"
			require.NoError(t, l.Append(r))
			require.NoError(t, l.Close())
			lines := readLines(t, filepath.Join(dir, FileName(1)))
			var got struct {
				Seq          uint64    `json:"seq"`
				Prev         string    `json:"prev"`
				Hash         string    `json:"hash"`
				RedactedText string    `json:"redacted_text"`
				Tenant       string    `json:"tenant"`
				TokensIn     int64     `json:"tokens_in"`
				Findings     []Finding `json:"findings"`
			}
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &got))
			assert.Equal(t, uint64(1), got.Seq)
			assert.Equal(t, strings.Repeat("0", 64), got.Prev)
			assert.Len(t, got.Hash, 64)
			assert.Equal(t, tc.want, got.RedactedText)
			assert.Equal(t, "acme", got.Tenant)
			assert.Equal(t, int64(101), got.TokensIn)
			assert.Equal(t, []Finding{{Type: "email", Path: "messages.1.content", Start: 4, End: 21, Action: "redact"}}, got.Findings)
		})
	}
}

// TestTamper flips one byte in every position class of a record and deletes,
// duplicates and swaps lines: Verify must report the exact record.
func TestTamper(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(lines []string) []string
		wantLine int
	}{
		{"flip byte in tenant of record 5", func(l []string) []string {
			l[4] = strings.Replace(l[4], `"acme"`, `"acmf"`, 1)
			return l
		}, 5},
		{"flip byte in tokens of first record", func(l []string) []string {
			l[0] = strings.Replace(l[0], `"tokens_in":100`, `"tokens_in":900`, 1)
			return l
		}, 1},
		{"flip byte in last record", func(l []string) []string {
			l[19] = strings.Replace(l[19], `"outcome":"ok"`, `"outcome":"ko"`, 1)
			return l
		}, 20},
		{"flip byte in hash", func(l []string) []string {
			b := []byte(l[7])
			i := len(b) - 4
			b[i] ^= 1
			l[7] = string(b)
			return l
		}, 8},
		{"flip byte in prev", func(l []string) []string {
			b := []byte(l[9])
			i := strings.Index(l[9], `"prev":"`) + 10
			b[i] ^= 1
			l[9] = string(b)
			return l
		}, 10},
		{"delete a line", func(l []string) []string {
			return append(l[:6:6], l[7:]...)
		}, 7},
		{"delete the first line", func(l []string) []string { return l[1:] }, 1},
		{"swap two lines", func(l []string) []string {
			l[3], l[4] = l[4], l[3]
			return l
		}, 4},
		{"duplicate a line", func(l []string) []string {
			return append(l[:3:3], append([]string{l[2]}, l[3:]...)...)
		}, 4},
		{"remove a newline", func(l []string) []string {
			l[11] = strings.TrimSuffix(l[11], "\n")
			return l
		}, 12},
		{"insert blank line", func(l []string) []string {
			return append(l[:2:2], append([]string{"\n"}, l[2:]...)...)
		}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, 20, Options{FlushInterval: -1})
			path := filepath.Join(dir, FileName(1))
			lines := tc.edit(readLines(t, path))
			require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600))
			rep, err := Verify(dir)
			require.ErrorIs(t, err, ErrTampered)
			var be *BreakError
			require.True(t, errors.As(err, &be))
			assert.Equal(t, Position{FileName(1), tc.wantLine}, be.Position, be.Reason)
			assert.Equal(t, be, rep.Broken)
			assert.Equal(t, tc.wantLine-1, rep.Records)
		})
	}
}

// TestFlipEveryByte flips each byte of a small log in turn; every flip must
// be detected (a flip of the final newline is a torn line instead).
func TestFlipEveryByte(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 3, Options{FlushInterval: -1})
	path := filepath.Join(dir, FileName(1))
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	for i := range orig {
		b := bytes.Clone(orig)
		b[i] ^= 0x01
		require.NoError(t, os.WriteFile(path, b, 0o600))
		rep, err := Verify(dir)
		if i == len(orig)-1 {
			assert.NoError(t, err)
			assert.Len(t, rep.Torn, 1, "byte %d", i)
			continue
		}
		assert.ErrorIs(t, err, ErrTampered, "flip at byte %d undetected", i)
	}
}

func TestRotationKeepsChain(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 200, Options{FlushInterval: -1, MaxFileBytes: 4 << 10})
	files, err := listFiles(dir)
	require.NoError(t, err)
	require.Greater(t, len(files), 3)
	for _, f := range files {
		st, err := os.Stat(filepath.Join(dir, f.name))
		require.NoError(t, err)
		assert.LessOrEqual(t, st.Size(), int64(4<<10))
	}
	rep, err := Verify(dir)
	require.NoError(t, err)
	assert.Equal(t, 200, rep.Records)
	assert.Equal(t, len(files), rep.Files)

	// Tamper with the first record of the third file: detected there.
	third := filepath.Join(dir, FileName(3))
	lines := readLines(t, third)
	lines[0] = strings.Replace(lines[0], `"acme"`, `"evil"`, 1)
	require.NoError(t, os.WriteFile(third, []byte(strings.Join(lines, "")), 0o600))
	_, err = Verify(dir)
	var be *BreakError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, Position{FileName(3), 1}, be.Position)
}

func TestDeletedFileDetected(t *testing.T) {
	tests := []struct {
		name   string
		remove int
		want   Position
	}{
		{"middle file", 2, Position{FileName(3), 0}},
		{"first file", 1, Position{FileName(2), 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, 100, Options{FlushInterval: -1, MaxFileBytes: 4 << 10})
			require.NoError(t, os.Remove(filepath.Join(dir, FileName(tc.remove))))
			_, err := Verify(dir)
			var be *BreakError
			require.ErrorAs(t, err, &be)
			assert.Equal(t, tc.want, be.Position)
		})
	}
}

func TestReopenContinuesChain(t *testing.T) {
	dir := t.TempDir()
	for range 3 {
		writeLog(t, dir, 10, Options{FlushInterval: -1})
	}
	rep, err := Verify(dir)
	require.NoError(t, err)
	assert.Equal(t, 30, rep.Records)
	assert.Equal(t, uint64(30), rep.HeadSeq)
	assert.Equal(t, 1, rep.Files)
}

func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 10, Options{FlushInterval: -1})
	path := filepath.Join(dir, FileName(1))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	// A crash cut the last write in half.
	require.NoError(t, os.WriteFile(path, b[:len(b)-40], 0o600))

	rep, err := Verify(dir)
	require.NoError(t, err)
	assert.True(t, rep.OK())
	assert.Equal(t, []Position{{FileName(1), 10}}, rep.Torn)
	assert.Equal(t, 9, rep.Records)

	var out, errOut bytes.Buffer
	assert.Equal(t, ExitTorn, RunVerify([]string{"verify", "--dir", dir}, &out, &errOut))

	// Reopening leaves the torn file alone and continues in a new file from
	// the last complete record.
	writeLog(t, dir, 5, Options{FlushInterval: -1})
	rep, err = Verify(dir)
	require.NoError(t, err)
	assert.Equal(t, 14, rep.Records)
	assert.Equal(t, uint64(14), rep.HeadSeq)
	assert.Equal(t, 2, rep.Files)
	assert.Equal(t, []Position{{FileName(1), 10}}, rep.Torn)
}

func TestBackgroundFlush(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{FlushInterval: time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	require.NoError(t, l.Append(testRecord(1)))
	require.Eventually(t, func() bool {
		rep, err := Verify(dir)
		return err == nil && rep.Records == 1
	}, 5*time.Second, time.Millisecond)
}

func TestAppendAfterClose(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	assert.ErrorIs(t, l.Append(testRecord(1)), ErrClosed)
	assert.NoError(t, l.Close())
}

func TestRunVerify(t *testing.T) {
	good := t.TempDir()
	writeLog(t, good, 5, Options{FlushInterval: -1})
	bad := t.TempDir()
	writeLog(t, bad, 5, Options{FlushInterval: -1})
	p := filepath.Join(bad, FileName(1))
	lines := readLines(t, p)
	lines[2] = strings.Replace(lines[2], `"k1"`, `"k2"`, 1)
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "")), 0o600))

	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"intact", []string{"verify", "--dir", good}, ExitOK, "OK 5 records in 1 files"},
		{"tampered", []string{"--dir", bad}, ExitTampered, "TAMPERED audit-000001.jsonl:3"},
		{"no dir", []string{"verify"}, ExitUsage, ""},
		{"json", []string{"--dir", bad, "--json"}, ExitTampered, `"line": 3`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			assert.Equal(t, tc.code, RunVerify(tc.args, &out, &errOut))
			assert.Contains(t, out.String(), tc.contains)
		})
	}
}

func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	l, err := Open(dir, Options{FlushInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		if err := l.Append(testRecord(i)); err != nil {
			f.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, FileName(1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add([]byte("{\"seq\":1}\n"))
	f.Add([]byte(""))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st := chainState{hash: genesis}
		var rep Report
		err := verifyFile(bytes.NewReader(data), "f", &st, &rep)
		if err != nil {
			var be *BreakError
			if !errors.As(err, &be) {
				t.Fatalf("non-break error: %v", err)
			}
			if be.Line < 1 {
				t.Fatalf("bad line %d", be.Line)
			}
		}
		// Whatever verifies must be a prefix of records with consecutive seq.
		if rep.Records > 0 && rep.HeadSeq != uint64(rep.Records) {
			t.Fatalf("head seq %d after %d records", rep.HeadSeq, rep.Records)
		}
		if bytes.Equal(data, good) && (err != nil || rep.Records != 3) {
			t.Fatalf("good log rejected: %v", err)
		}
	})
}

// FuzzTamper: any single-byte change of a valid log is detected (or, for
// the final newline, reported as a torn line).
func FuzzTamper(f *testing.F) {
	l, err := Open(f.TempDir(), Options{FlushInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 4 {
		if err := l.Append(testRecord(i)); err != nil {
			f.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(l.dir, FileName(1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint(0), byte('x'))
	f.Add(uint(len(good)/2), byte('0'))
	f.Add(uint(len(good)-1), byte(' '))
	f.Fuzz(func(t *testing.T, pos uint, val byte) {
		b := bytes.Clone(good)
		i := int(pos % uint(len(b)))
		if b[i] == val {
			return
		}
		b[i] = val
		st := chainState{hash: genesis}
		var rep Report
		err := verifyFile(bytes.NewReader(b), "f", &st, &rep)
		if err == nil && len(rep.Torn) == 0 {
			t.Fatalf("change of byte %d to %q undetected", i, val)
		}
	})
}

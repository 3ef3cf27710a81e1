package meter

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openWith(t *testing.T, path string, opts FileLedgerOptions) *FileLedger {
	t.Helper()
	opts.FlushInterval = -1
	opts.Now = func() time.Time { return t0 }
	l, err := OpenFileLedger(path, opts)
	require.NoError(t, err)
	return l
}

func spendN(t *testing.T, l *FileLedger, tenant string, n int, amount Money) {
	t.Helper()
	ctx := testCtx(t)
	b := NewBudgets(l, nil, WithClock(func() time.Time { return t0 }))
	for i := 0; i < n; i++ {
		r, err := b.Reserve(ctx, tenant, amount, tenant+"-"+time.Duration(i).String())
		require.NoError(t, err)
		require.NoError(t, r.Settle(ctx, amount))
	}
}

func spent(t *testing.T, l *FileLedger, tenant string) Spend {
	t.Helper()
	s, err := l.Spent(testCtx(t), tenant, WindowsAt(t0))
	require.NoError(t, err)
	return s
}

// TestFileLedgerSnapshotSkipsReplayedRecords: after Close wrote a snapshot,
// open reads only the records after it. Garbage written over a record the
// snapshot covers proves it: a full replay would fail with ErrCorruptLedger.
func TestFileLedgerSnapshotSkipsReplayedRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openWith(t, path, FileLedgerOptions{})
	spendN(t, l, "acme", 10, Dollar)
	require.NoError(t, l.Close())
	_, err := os.Stat(snapshotPath(path))
	require.NoError(t, err, "Close wrote a snapshot")

	l = openWith(t, path, FileLedgerOptions{})
	spendN(t, l, "beta", 3, Cent) // after the snapshot
	require.NoError(t, l.Flush())
	require.NoError(t, l.f.Close()) // crash: no snapshot of beta's records

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	first := bytes.IndexByte(data, '\n')
	copy(data, bytes.Repeat([]byte("x"), first)) // corrupt record 1
	require.NoError(t, os.WriteFile(path, data, 0o644))

	l = openWith(t, path, FileLedgerOptions{})
	assert.Equal(t, Spend{Daily: 10 * Dollar, Monthly: 10 * Dollar}, spent(t, l, "acme"))
	assert.Equal(t, Spend{Daily: 3 * Cent, Monthly: 3 * Cent}, spent(t, l, "beta"))
	require.NoError(t, l.Close())

	// Without snapshots the whole file is replayed, and the damage found.
	_, err = OpenFileLedger(path, FileLedgerOptions{FlushInterval: -1, SnapshotEvery: -1})
	assert.ErrorIs(t, err, ErrCorruptLedger)
}

// TestFileLedgerSnapshotOfOtherFileIgnored: a snapshot whose last record is
// not where it says (the ledger was replaced or truncated) is not used.
func TestFileLedgerSnapshotOfOtherFileIgnored(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.jsonl")
	l := openWith(t, path, FileLedgerOptions{})
	spendN(t, l, "acme", 5, Dollar)
	require.NoError(t, l.Close())
	snap, err := os.ReadFile(snapshotPath(path))
	require.NoError(t, err)

	other := filepath.Join(dir, "other.jsonl")
	l = openWith(t, other, FileLedgerOptions{SnapshotEvery: -1})
	spendN(t, l, "acme", 7, Dollar) // longer file, different last record
	require.NoError(t, l.Close())
	require.NoError(t, os.Rename(other, path))
	require.NoError(t, os.WriteFile(snapshotPath(path), snap, 0o644))

	l = openWith(t, path, FileLedgerOptions{})
	assert.Equal(t, Spend{Daily: 7 * Dollar, Monthly: 7 * Dollar}, spent(t, l, "acme"))
	require.NoError(t, l.Close())

	// A truncated ledger (shorter than the snapshot's offset) too.
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	l = openWith(t, path, FileLedgerOptions{})
	assert.Equal(t, Spend{}, spent(t, l, "acme"))
	require.NoError(t, l.Close())
}

// TestFileLedgerSnapshotCrashSafety: a torn snapshot or a leftover temp file
// (a crash while writing one) costs only a full replay.
func TestFileLedgerSnapshotCrashSafety(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openWith(t, path, FileLedgerOptions{})
	spendN(t, l, "acme", 4, Dollar)
	require.NoError(t, l.Close())
	snap, err := os.ReadFile(snapshotPath(path))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(snapshotPath(path)+".tmp", []byte("half a snap"), 0o644))

	for _, torn := range [][]byte{snap[:len(snap)-3], snap[:10], []byte("{}\n"), nil} {
		require.NoError(t, os.WriteFile(snapshotPath(path), torn, 0o644))
		l = openWith(t, path, FileLedgerOptions{})
		assert.Equal(t, Spend{Daily: 4 * Dollar, Monthly: 4 * Dollar}, spent(t, l, "acme"), "snapshot %q", torn)
		require.NoError(t, l.Close())
	}
}

// TestFileLedgerSnapshotKeepsHolds: open reservations in a snapshot are
// restored and, their process being gone, released at the next open.
func TestFileLedgerSnapshotKeepsHolds(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openWith(t, path, FileLedgerOptions{})
	b := NewBudgets(l, map[string]Caps{"acme": {Daily: 10 * Dollar}}, WithClock(func() time.Time { return t0 }))
	_, err := b.Reserve(ctx, "acme", 6*Dollar, "open")
	require.NoError(t, err)
	r, err := b.Reserve(ctx, "acme", 2*Dollar, "done")
	require.NoError(t, err)
	require.NoError(t, r.Settle(ctx, Dollar))
	require.NoError(t, l.Snapshot())
	var h snapshotHeader
	snap, err := os.ReadFile(snapshotPath(path))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(snap[:bytes.IndexByte(snap, '\n')], &h))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, st.Size(), h.Offset, "Snapshot flushed the buffered records first")
	_, err = b.Reserve(ctx, "acme", 4*Dollar, "too-much")
	assert.ErrorIs(t, err, ErrBudgetExceeded, "the hold still counts in this run")
	require.NoError(t, l.f.Close()) // crash right after the snapshot

	l = openWith(t, path, FileLedgerOptions{})
	t.Cleanup(func() { _ = l.Close() })
	assert.Equal(t, Spend{Daily: Dollar, Monthly: Dollar}, spent(t, l, "acme"))
	b = NewBudgets(l, map[string]Caps{"acme": {Daily: 10 * Dollar}}, WithClock(func() time.Time { return t0 }))
	_, err = b.Reserve(ctx, "acme", 9*Dollar, "after-restart")
	require.NoError(t, err, "the dead hold was released")
}

// TestFileLedgerSnapshotTakenInBackgroundAndAtOpen covers the two other
// triggers: every SnapshotEvery records with the background flush, and at
// open after a long replay.
func TestFileLedgerSnapshotTakenInBackgroundAndAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := OpenFileLedger(path, FileLedgerOptions{FlushInterval: 5 * time.Millisecond, SnapshotEvery: 10})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	spendN(t, l, "acme", 10, Cent) // 20 records
	require.Eventually(t, func() bool {
		_, err := os.Stat(snapshotPath(path))
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, l.Close())

	path2 := filepath.Join(t.TempDir(), "ledger.jsonl")
	writeLedger(t, path2, 50)
	l = openWith(t, path2, FileLedgerOptions{SnapshotEvery: 20})
	_, err = os.Stat(snapshotPath(path2))
	assert.NoError(t, err, "open replayed 50 > 20 records and took a snapshot")
	require.NoError(t, l.Close())
}

func TestFileLedgerCompactDropsSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	clock := time.Date(2031, 10, 15, 9, 0, 0, 0, time.UTC)
	l, err := OpenFileLedger(path, FileLedgerOptions{FlushInterval: -1, Now: func() time.Time { return clock }})
	require.NoError(t, err)
	b := NewBudgets(l, nil, WithClock(func() time.Time { return clock }))
	r, err := b.Reserve(testCtx(t), "acme", Dollar, "old")
	require.NoError(t, err)
	require.NoError(t, r.Settle(testCtx(t), Dollar))
	require.NoError(t, l.Close())

	l = openWith(t, path, FileLedgerOptions{Compact: true})
	spendN(t, l, "acme", 2, Cent)
	require.NoError(t, l.Close())
	l = openWith(t, path, FileLedgerOptions{})
	t.Cleanup(func() { _ = l.Close() })
	assert.Equal(t, Spend{Daily: 2 * Cent, Monthly: 2 * Cent}, spent(t, l, "acme"))
}

// TestFileLedgerSnapshotsUnderLoad: background snapshots taken while
// requests run never lose or double a record.
func TestFileLedgerSnapshotsUnderLoad(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := OpenFileLedger(path, FileLedgerOptions{FlushInterval: time.Millisecond, SnapshotEvery: 7, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	b := NewBudgets(l, nil, WithClock(func() time.Time { return t0 }))
	const workers, each = 4, 200
	done := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				r, err := b.Reserve(ctx, "acme", 2*Cent, "w"+string(rune('a'+w))+"-"+time.Duration(i).String())
				if err != nil {
					done <- err
					return
				}
				if err := r.Settle(ctx, Cent); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		require.NoError(t, <-done)
	}
	require.NoError(t, l.f.Sync())
	want := Spend{Daily: workers * each * Cent, Monthly: workers * each * Cent}
	// Crash (no Close): the latest background snapshot plus the tail.
	require.NoError(t, l.Flush())
	l.mu.Lock()
	l.closed = true // stop the flush loop from writing after the "crash"
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	require.NoError(t, l.f.Close())

	l2 := openWith(t, path, FileLedgerOptions{SnapshotEvery: 7})
	assert.Equal(t, want, spent(t, l2, "acme"))
	require.NoError(t, l2.Close())
	l3 := openWith(t, path, FileLedgerOptions{SnapshotEvery: -1})
	t.Cleanup(func() { _ = l3.Close() })
	assert.Equal(t, want, spent(t, l3, "acme"), "full replay agrees")
}

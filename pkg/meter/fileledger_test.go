package meter

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openLedger(t *testing.T, path string) *FileLedger {
	t.Helper()
	l, err := OpenFileLedger(path, FileLedgerOptions{FlushInterval: -1, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	return l
}

func readRecords(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "line %q", sc.Text())
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestFileLedgerSurvivesReopen(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	caps := map[string]Caps{"acme": {Daily: 10 * Dollar}}
	clock := newFakeClock(t0)

	l := openLedger(t, path)
	b := NewBudgets(l, caps, WithClock(clock.Now))
	r, err := b.Reserve(ctx, "acme", 4*Dollar, "a")
	require.NoError(t, err)
	require.NoError(t, r.Settle(ctx, 3*Dollar+1))
	r, err = b.Reserve(ctx, "acme", 2*Dollar, "b")
	require.NoError(t, err)
	require.NoError(t, r.Release(ctx))
	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "Close is idempotent")

	l = openLedger(t, path)
	b = NewBudgets(l, caps, WithClock(clock.Now))
	t.Cleanup(func() { _ = b.Close() })
	s, err := b.Spent(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, Spend{Daily: 3*Dollar + 1, Monthly: 3*Dollar + 1}, s)
	_, err = b.Reserve(ctx, "acme", 7*Dollar, "c")
	assert.ErrorIs(t, err, ErrBudgetExceeded, "the replayed spend counts against the cap")
	_, err = b.Reserve(ctx, "acme", 7*Dollar-1, "c")
	require.NoError(t, err)
}

// TestFileLedgerOpenReservationsAreReleased: a hold left open by a crashed
// process is not spend after a restart (it is a worst-case bound that would
// otherwise block the tenant until the window ends).
func TestFileLedgerOpenReservationsAreReleased(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	clock := newFakeClock(t0)

	l := openLedger(t, path)
	b := NewBudgets(l, nil, WithClock(clock.Now))
	_, err := b.Reserve(ctx, "acme", 5*Dollar, "never-settled")
	require.NoError(t, err)
	require.NoError(t, l.Flush())
	// Simulate a crash: the file is flushed but the process never settles.
	require.NoError(t, l.f.Close())

	l = openLedger(t, path)
	b = NewBudgets(l, map[string]Caps{"acme": {Daily: 10 * Dollar}}, WithClock(clock.Now))
	s, err := b.Spent(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, Spend{}, s)
	_, err = b.Reserve(ctx, "acme", 10*Dollar, "whole-cap")
	require.NoError(t, err, "the dead hold no longer counts against the cap")
	require.NoError(t, b.Close())

	recs := readRecords(t, path)
	require.Len(t, recs, 3)
	assert.Equal(t, record{Op: opSettle, Time: t0, Tenant: "acme", ID: "never-settled", Day: "2031-11-27", Month: "2031-11",
		Amount: 0, Reserved: 5 * Dollar, Recovered: true}, recs[1])

	// A third open replays the recovery record; the hold left open by the
	// second run is released too.
	l = openLedger(t, path)
	t.Cleanup(func() { _ = l.Close() })
	s, err = l.Spent(ctx, "acme", WindowsAt(t0))
	require.NoError(t, err)
	assert.Equal(t, Spend{}, s)
}

func TestFileLedgerTornLastLine(t *testing.T) {
	tests := []struct {
		name    string
		garbage string
	}{
		{"half a record, no newline", `{"op":"reserve","t":"2031-11-27T12:00:00Z","tenant":"acme","id":"x","da`},
		{"half a record with newline", `{"op":"settle","tenant":"ac` + "\n"},
		{"binary junk", "\x00\x00\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			path := filepath.Join(t.TempDir(), "ledger.jsonl")
			clock := newFakeClock(t0)

			l := openLedger(t, path)
			b := NewBudgets(l, nil, WithClock(clock.Now))
			r, err := b.Reserve(ctx, "acme", Dollar, "a")
			require.NoError(t, err)
			require.NoError(t, r.Settle(ctx, Dollar))
			require.NoError(t, b.Close())
			good, err := os.Stat(path)
			require.NoError(t, err)

			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteString(tt.garbage)
			require.NoError(t, err)
			require.NoError(t, f.Close())

			// Reopen: the torn tail is cut off, then a record is appended.
			l = openLedger(t, path)
			st, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, good.Size(), st.Size(), "file truncated to the last good record")
			b = NewBudgets(l, nil, WithClock(clock.Now))
			r, err = b.Reserve(ctx, "acme", 2*Dollar, "b")
			require.NoError(t, err)
			require.NoError(t, r.Settle(ctx, 2*Dollar))
			require.NoError(t, b.Close())

			// Reopen again: every record parses, nothing was lost or merged.
			recs := readRecords(t, path)
			assert.Len(t, recs, 4)
			l = openLedger(t, path)
			t.Cleanup(func() { _ = l.Close() })
			s, err := l.Spent(ctx, "acme", WindowsAt(t0))
			require.NoError(t, err)
			assert.Equal(t, Spend{Daily: 3 * Dollar, Monthly: 3 * Dollar}, s)
		})
	}
}

func TestFileLedgerCorruptMiddleRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	good := `{"op":"reserve","t":"2031-11-27T12:00:00Z","tenant":"acme","id":"a","day":"2031-11-27","month":"2031-11","amount_pusd":5}`
	content := strings.Join([]string{good, "not json", good}, "\n") + "\n"
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	_, err := OpenFileLedger(path, FileLedgerOptions{FlushInterval: -1})
	assert.ErrorIs(t, err, ErrCorruptLedger)
	// The file is left untouched for an operator to inspect.
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, content, string(b))
}

func TestFileLedgerExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openLedger(t, path)
	_, err := OpenFileLedger(path, FileLedgerOptions{FlushInterval: -1})
	assert.Error(t, err, "a second open of the same file is refused")
	require.NoError(t, l.Close())
	l = openLedger(t, path)
	require.NoError(t, l.Close())
}

func TestFileLedgerFlushAndClosed(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l := openLedger(t, path)
	b := NewBudgets(l, nil, WithClock(newFakeClock(t0).Now))
	_, err := b.Reserve(ctx, "acme", Dollar, "a")
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Zero(t, st.Size(), "buffered until flushed")
	require.NoError(t, l.Flush())
	assert.Len(t, readRecords(t, path), 1)

	require.NoError(t, l.Close())
	_, err = b.Reserve(ctx, "acme", Dollar, "b")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = b.Spent(ctx, "acme")
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, l.Flush(), ErrClosed)
}

func TestFileLedgerSyncEveryWrite(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := OpenFileLedger(path, FileLedgerOptions{SyncEveryWrite: true, FlushInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	b := NewBudgets(l, nil, WithClock(newFakeClock(t0).Now))
	r, err := b.Reserve(ctx, "acme", Dollar, "a")
	require.NoError(t, err)
	assert.Len(t, readRecords(t, path), 1, "on disk before Reserve returns")
	require.NoError(t, r.Settle(ctx, Cent))
	assert.Len(t, readRecords(t, path), 2)
}

func TestFileLedgerBackgroundFlush(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := OpenFileLedger(path, FileLedgerOptions{FlushInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	b := NewBudgets(l, nil, WithClock(newFakeClock(t0).Now))
	_, err = b.Reserve(ctx, "acme", Dollar, "a")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := os.Stat(path)
		return err == nil && st.Size() > 0
	}, 10*time.Second, 5*time.Millisecond)
}

func FuzzFileLedgerReplay(f *testing.F) {
	rec := `{"op":"reserve","t":"2031-11-27T12:00:00Z","tenant":"acme","id":"a","day":"2031-11-27","month":"2031-11","amount_pusd":5}` + "\n"
	set := `{"op":"settle","t":"2031-11-27T12:00:00Z","tenant":"acme","id":"a","day":"2031-11-27","month":"2031-11","amount_pusd":3,"reserved_pusd":5}` + "\n"
	f.Add([]byte(""))
	f.Add([]byte(rec))
	f.Add([]byte(rec + set))
	f.Add([]byte(rec + set[:40]))
	f.Add([]byte(rec + rec))
	f.Add([]byte("\n\n" + rec + "garbage\n"))
	f.Add([]byte(`{"op":"reserve","tenant":"t","id":"i","day":"d","month":"m","amount_pusd":-1}` + "\n"))
	f.Add([]byte(`{"op":"carry","t":"2031-11-27T12:00:00Z","tenant":"acme","id":"","day":"2031-11-27","month":"","amount_pusd":9}` + "\n" + rec))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "ledger.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := OpenFileLedger(path, FileLedgerOptions{FlushInterval: -1, Now: func() time.Time { return t0 }})
		if err != nil {
			return // rejected as corrupt: fine, as long as it did not panic
		}
		ctx := testCtx(t)
		before, err := l.Spent(ctx, "acme", WindowsAt(t0))
		if err != nil {
			t.Fatal(err)
		}
		b := NewBudgets(l, nil, WithClock(func() time.Time { return t0 }))
		r, err := b.Reserve(ctx, "acme", 7, "fuzz-new")
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Settle(ctx, 7); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// After repair and an append, the file must reopen cleanly with the
		// new record counted.
		l, err = OpenFileLedger(path, FileLedgerOptions{FlushInterval: -1, Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatalf("reopen after append: %v", err)
		}
		defer l.Close()
		after, err := l.Spent(ctx, "acme", WindowsAt(t0))
		if err != nil {
			t.Fatal(err)
		}
		if after.Daily != addSat(before.Daily, 7) {
			t.Fatalf("spent %v -> %v, want +7", before.Daily, after.Daily)
		}
	})
}

func TestFileLedgerCompact(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	clock := newFakeClock(time.Date(2031, 10, 15, 9, 0, 0, 0, time.UTC))
	l := openLedger(t, path)
	b := NewBudgets(l, nil, WithClock(clock.Now))
	spend := func(tenant, id string, at time.Time, amount Money) {
		t.Helper()
		clock.Set(at)
		r, err := b.Reserve(ctx, tenant, amount, id)
		require.NoError(t, err)
		require.NoError(t, r.Settle(ctx, amount))
	}
	spend("acme", "oct", time.Date(2031, 10, 15, 9, 0, 0, 0, time.UTC), 100*Dollar)
	spend("acme", "nov-26", time.Date(2031, 11, 26, 9, 0, 0, 0, time.UTC), 3*Dollar)
	spend("acme", "nov-27a", t0, 2*Dollar)
	spend("acme", "nov-27b", t0, 5)
	spend("beta", "nov-27", t0, 7*Dollar)
	_, err := b.Reserve(ctx, "beta", Dollar, "open") // left open: released at open
	require.NoError(t, err)
	require.NoError(t, l.Flush())
	require.NoError(t, l.f.Close()) // crash
	before, err := os.Stat(path)
	require.NoError(t, err)

	l, err = OpenFileLedger(path, FileLedgerOptions{FlushInterval: -1, Compact: true, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	after, err := os.Stat(path)
	require.NoError(t, err)
	assert.Less(t, after.Size(), before.Size())
	recs := readRecords(t, path)
	assert.Equal(t, []record{
		{Op: opCarry, Time: t0, Tenant: "acme", Day: "2031-11-27", Amount: 2*Dollar + 5},
		{Op: opCarry, Time: t0, Tenant: "acme", Month: "2031-11", Amount: 5*Dollar + 5},
		{Op: opCarry, Time: t0, Tenant: "beta", Day: "2031-11-27", Amount: 7 * Dollar},
		{Op: opCarry, Time: t0, Tenant: "beta", Month: "2031-11", Amount: 7 * Dollar},
	}, recs)
	_, err = os.Stat(path + ".compact")
	assert.True(t, os.IsNotExist(err), "temp file renamed away")

	// The compacted ledger keeps working and replays to the same totals.
	b = NewBudgets(l, nil, WithClock(newFakeClock(t0).Now))
	r, err := b.Reserve(ctx, "acme", Dollar, "after")
	require.NoError(t, err)
	require.NoError(t, r.Settle(ctx, Dollar))
	require.NoError(t, b.Close())

	l = openLedger(t, path)
	t.Cleanup(func() { _ = l.Close() })
	for _, tt := range []struct {
		tenant string
		at     time.Time
		want   Spend
	}{
		{"acme", t0, Spend{Daily: 3*Dollar + 5, Monthly: 6*Dollar + 5}},
		{"beta", t0, Spend{Daily: 7 * Dollar, Monthly: 7 * Dollar}},
		{"acme", time.Date(2031, 10, 15, 0, 0, 0, 0, time.UTC), Spend{}}, // dropped
	} {
		s, err := l.Spent(ctx, tt.tenant, WindowsAt(tt.at))
		require.NoError(t, err)
		assert.Equal(t, tt.want, s, "%s at %s", tt.tenant, tt.at)
	}
}

// TestFileLedgerLag: Lag is the age of the oldest record not yet on disk,
// zero once it is flushed (the tollgate_ledger_lag_seconds alert).
func TestFileLedgerLag(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l, err := OpenFileLedger(filepath.Join(t.TempDir(), "l.jsonl"), FileLedgerOptions{FlushInterval: -1, Now: clock})
	require.NoError(t, err)
	defer l.Close()
	assert.Zero(t, l.Lag())
	b := NewBudgets(l, nil, WithClock(clock))
	_, err = b.Reserve(testCtx(t), "acme", Dollar, "a")
	require.NoError(t, err)
	now = now.Add(90 * time.Second)
	assert.Equal(t, 90*time.Second, l.Lag())
	require.NoError(t, l.Flush())
	assert.Zero(t, l.Lag())
}

package meter

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// writeLedger writes n records (reserve+settle pairs over 100 tenants, all in
// t0's windows) straight to path, as a long-running FileLedger would have.
func writeLedger(tb testing.TB, path string, n int) { appendLedger(tb, path, 0, n) }

// appendLedger appends records from..to-1 of the same sequence.
func appendLedger(tb testing.TB, path string, from, to int) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	w := WindowsAt(t0)
	var buf []byte
	for i := from; i < to; i++ {
		rec := record{Op: opReserve, Time: t0, Tenant: "tenant-" + strconv.Itoa(i/2%100), ID: "req-" + strconv.Itoa(i/2),
			Day: w.Day, Month: w.Month, Amount: 3 * Cent}
		if i%2 == 1 {
			rec.Op, rec.Amount, rec.Reserved = opSettle, Cent, 3*Cent
		}
		buf = append(appendRecord(buf, &rec), '\n')
		if len(buf) > 1<<20 {
			if _, err := f.Write(buf); err != nil {
				tb.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	if _, err := f.Write(buf); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkFileLedgerOpen1M measures start-up (replay) of a ledger of one
// million records: replaying all of them, from a snapshot taken at the end,
// and from a snapshot followed by just under SnapshotEvery records (the
// worst case after a crash). Gated: it writes ~180 MB.
//
//	TOLLGATE_LEDGER_BENCH=1 go test -run XXX -bench FileLedgerOpen1M -benchtime 3x ./pkg/meter/
func BenchmarkFileLedgerOpen1M(b *testing.B) {
	if os.Getenv("TOLLGATE_LEDGER_BENCH") == "" {
		b.Skip("set TOLLGATE_LEDGER_BENCH=1 (writes ~180 MB)")
	}
	const n = 1_000_000
	for _, bb := range []struct {
		name  string
		setup func(b *testing.B, path string)
		opts  FileLedgerOptions
	}{
		{"full-replay", func(b *testing.B, path string) { writeLedger(b, path, n) }, FileLedgerOptions{SnapshotEvery: -1}},
		{"snapshot", func(b *testing.B, path string) {
			writeLedger(b, path, n)
			snapshotNow(b, path)
		}, FileLedgerOptions{}},
		{"snapshot+tail", func(b *testing.B, path string) {
			writeLedger(b, path, n-DefaultSnapshotEvery+2)
			snapshotNow(b, path)
			appendLedger(b, path, n-DefaultSnapshotEvery+2, n)
		}, FileLedgerOptions{}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "ledger.jsonl")
			bb.setup(b, path)
			opts := bb.opts
			opts.FlushInterval, opts.Now = -1, func() time.Time { return t0 }
			b.ReportAllocs()
			for b.Loop() {
				l, err := OpenFileLedger(path, opts)
				if err != nil {
					b.Fatal(err)
				}
				if s := spentOf(l); s.Monthly != n/2*Cent {
					b.Fatalf("replayed spend %s, want %s", s.Monthly, n/2*Cent)
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func snapshotNow(b *testing.B, path string) {
	l, err := OpenFileLedger(path, FileLedgerOptions{FlushInterval: -1, SnapshotEvery: 1 << 30, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Snapshot(); err != nil {
		b.Fatal(err)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

func spentOf(l *FileLedger) Spend {
	var total Spend
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, w := range l.state.windows {
		if id.kind == 'm' {
			total.Monthly += w.spent
		}
	}
	return total
}

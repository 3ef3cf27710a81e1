package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/meter"
)

var (
	day1 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	day2 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	day3 = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
)

// writeLedger fills a real file ledger through Budgets: settled requests of
// two tenants over three days (two months), one reservation released at $0
// and one left open. It returns the settled sums it wrote per tenant and day.
func writeLedger(t *testing.T, path string) map[string]map[string]meter.Money {
	t.Helper()
	now := day1
	l, err := meter.OpenFileLedger(path, meter.FileLedgerOptions{FlushInterval: -1, Now: func() time.Time { return now }})
	require.NoError(t, err)
	b := meter.NewBudgets(l, nil, meter.WithClock(func() time.Time { return now }), meter.WithDefaultCaps(meter.Caps{Daily: 100 * meter.Dollar}))
	ctx := context.Background()
	want := map[string]map[string]meter.Money{}
	n := 0
	settle := func(tenant string, actual meter.Money) {
		n++
		r, err := b.Reserve(ctx, tenant, 5*meter.Cent, "req-"+string(rune('a'+n)))
		require.NoError(t, err)
		require.NoError(t, r.Settle(ctx, actual))
		day := now.Format(time.DateOnly)
		if want[tenant] == nil {
			want[tenant] = map[string]meter.Money{}
		}
		want[tenant][day] += actual
	}
	settle("acme", 1234*meter.Microdollar)
	settle("acme", 7*meter.Picodollar)
	settle("beta", 3*meter.Cent)
	now = day2
	settle("acme", 2*meter.Cent+1)
	settle("beta", 0) // a provider error: settled at $0, still a request
	now = day3
	settle("acme", 999*meter.Nanodollar)
	_, err = b.Reserve(ctx, "beta", 4*meter.Cent, "in-flight")
	require.NoError(t, err)
	require.NoError(t, l.Close())
	return want
}

func runJSONReport(t *testing.T, args ...string) report {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"report", "--json"}, args...), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	var rep report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	return rep
}

func money(t *testing.T, usd string) meter.Money {
	t.Helper()
	whole, frac, _ := strings.Cut(usd, ".")
	frac = (frac + strings.Repeat("0", 12))[:12]
	var m meter.Money
	for _, c := range whole + frac {
		m = m*10 + meter.Money(c-'0')
	}
	return m
}

func byTenant(rep report) map[string]*tenantReport {
	out := map[string]*tenantReport{}
	for _, tr := range rep.Tenants {
		out[tr.Tenant] = tr
	}
	return out
}

func TestReportTotalsMatchLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	want := writeLedger(t, path)

	rep := runJSONReport(t, "--ledger", path)
	got := byTenant(rep)
	require.Len(t, got, 2)
	var total meter.Money
	for tenant, days := range want {
		var sum meter.Money
		for _, m := range days {
			sum += m
		}
		total += sum
		assert.Equal(t, sum, money(t, got[tenant].SpendUSD), tenant)
		assert.Equal(t, sum, money(t, got[tenant].TotalUSD), tenant)
	}
	assert.Equal(t, 4, got["acme"].Requests)
	assert.Equal(t, 2, got["beta"].Requests)
	assert.Equal(t, 1, got["beta"].Open)
	assert.Equal(t, 4*meter.Cent, money(t, got["beta"].HeldUSD))
	assert.Equal(t, total, money(t, rep.Total.SpendUSD))
	assert.Equal(t, 6, rep.Total.Requests)

	// One day: what the ledger itself holds for that day window.
	rep = runJSONReport(t, "--ledger", path, "--from", "2026-12-01", "--to", "2026-12-01")
	l, err := meter.OpenFileLedger(path, meter.FileLedgerOptions{FlushInterval: -1, SnapshotEvery: -1})
	require.NoError(t, err)
	for tenant, tr := range byTenant(rep) {
		s, err := l.Spent(context.Background(), tenant, meter.WindowsAt(day2))
		require.NoError(t, err)
		assert.Equal(t, s.Daily, money(t, tr.TotalUSD), tenant)
		assert.Equal(t, want[tenant]["2026-12-01"], s.Daily)
	}
	require.NoError(t, l.Close()) // reopening released the open reservation

	// The tenant filter, and the recovered reservation.
	rep = runJSONReport(t, "--ledger", path, "--tenant", "beta")
	require.Len(t, rep.Tenants, 1)
	assert.Equal(t, 1, rep.Tenants[0].Recovered)
	assert.Equal(t, 0, rep.Tenants[0].Open)
	assert.Equal(t, 3*meter.Cent, money(t, rep.Total.TotalUSD))
}

func TestReportAfterCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	want := writeLedger(t, path)
	// Reopen on day 3 with compaction: November and day 1 and 2 of
	// December survive only as carried window totals.
	l, err := meter.OpenFileLedger(path, meter.FileLedgerOptions{FlushInterval: -1, SnapshotEvery: -1, Compact: true,
		Now: func() time.Time { return day3 }})
	require.NoError(t, err)
	month, err := l.Spent(context.Background(), "acme", meter.WindowsAt(day3))
	require.NoError(t, err)
	require.NoError(t, l.Close())

	rep := runJSONReport(t, "--ledger", path, "--tenant", "acme")
	require.Len(t, rep.Tenants, 1)
	acme := rep.Tenants[0]
	assert.Equal(t, month.Monthly, money(t, acme.TotalUSD), "the whole file: this month's window")
	assert.Equal(t, want["acme"]["2026-12-01"]+want["acme"]["2026-12-02"], month.Monthly)
	assert.Equal(t, 0, acme.Requests, "compacted records have no request count")

	// Day 3 only: its day carry; the month's remainder has no day.
	rep = runJSONReport(t, "--ledger", path, "--tenant", "acme", "--from", "2026-12-02")
	assert.Equal(t, want["acme"]["2026-12-02"], money(t, rep.Total.TotalUSD))
}

func TestReportTableAndErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	writeLedger(t, path)
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"report", "--ledger", path}, &out, &errb), errb.String())
	lines := strings.Split(out.String(), "\n")
	var total []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "TOTAL" {
			total = f
		}
	}
	require.NotNil(t, total, out.String())
	assert.Equal(t, []string{"TOTAL", "6", "0.051234999008"}, total[:3])
	assert.Contains(t, out.String(), "tollgate_cache_saved_usd_total")

	for _, args := range [][]string{
		{"report"},
		{"report", "--ledger", path, "--from", "yesterday"},
		{"report", "--ledger", path, "--from", "2026-12-02", "--to", "2026-12-01"},
	} {
		errb.Reset()
		assert.Equal(t, 2, run(context.Background(), args, &out, &errb), args)
		assert.NotEmpty(t, errb.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("not json\n{\"op\":\"settle\"}\n"), 0o644))
	errb.Reset()
	assert.Equal(t, 1, run(context.Background(), []string{"report", "--ledger", bad}, &out, &errb))
	assert.Contains(t, errb.String(), "line 1")
	errb.Reset()
	assert.Equal(t, 1, run(context.Background(), []string{"report", "--ledger", filepath.Join(t.TempDir(), "missing")}, &out, &errb))
}

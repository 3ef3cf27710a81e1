package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/meter"
)

// reportNotes say what a ledger report cannot show; printed under the table
// and carried in the JSON.
var reportNotes = []string{
	"The ledger records spend of tenants that have a budget cap (budgets.default or budgets.tenants); requests of uncapped tenants are not in it.",
	"Ledger records name the tenant only: spend per model alias is in the tollgate_cost_usd_total metric, not here.",
	"Savings are metrics, not ledger records: cache hits in tollgate_cache_saved_usd_total{tenant}, prompt compression in tollgate_prompt_tokens_saved_total{tenant,model}.",
	"carried_usd is spend the ledger holds only as a window total after compaction (budgets.ledger compaction); it has no request count.",
}

// tenantReport is one tenant's totals over the report's days.
type tenantReport struct {
	Tenant string `json:"tenant"`
	// Requests: settled reservations (requests that reached the budget
	// stage and finished, at any cost including $0), recovered excluded.
	Requests int `json:"requests"`
	// SpendUSD: the settled cost of those requests; CarriedUSD: compacted
	// window totals; TotalUSD: both.
	SpendUSD   string `json:"spend_usd"`
	CarriedUSD string `json:"carried_usd"`
	TotalUSD   string `json:"total_usd"`
	// Recovered: reservations released at start-up after a crash (cost
	// unknown, counted as $0).
	Recovered int `json:"recovered"`
	// Open: reservations not settled in the file (in flight, or lost in a
	// crash before the server restarted); HeldUSD is what they hold.
	Open    int    `json:"open"`
	HeldUSD string `json:"held_usd"`

	spend, carried, held meter.Money
}

type report struct {
	Ledger  string          `json:"ledger"`
	From    string          `json:"from,omitempty"`
	To      string          `json:"to,omitempty"`
	Tenants []*tenantReport `json:"tenants"`
	Total   *tenantReport   `json:"total"`
	Notes   []string        `json:"notes"`
}

// runReport: tollgate report --ledger PATH [--from DAY --to DAY] [--tenant T] [--json]
func runReport(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("ledger", "", "the spend ledger file (budgets.ledger.path); required")
	from := fs.String("from", "", "first UTC day to include, YYYY-MM-DD (default: the beginning)")
	to := fs.String("to", "", "last UTC day to include, YYYY-MM-DD (default: the end)")
	tenant := fs.String("tenant", "", "report this tenant only")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: tollgate report --ledger PATH [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--tenant T] [--json]")
		return 2
	}
	for name, d := range map[string]string{"--from": *from, "--to": *to} {
		if d == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			fmt.Fprintf(stderr, "tollgate report: %s %q is not a date (YYYY-MM-DD)\n", name, d)
			return 2
		}
	}
	if *from != "" && *to != "" && *from > *to {
		fmt.Fprintf(stderr, "tollgate report: --from %s is after --to %s\n", *from, *to)
		return 2
	}
	f, err := os.Open(*path)
	if err != nil {
		fmt.Fprintf(stderr, "tollgate report: %v\n", err)
		return 1
	}
	defer f.Close()
	rep, err := buildReport(f, *from, *to, *tenant)
	if err != nil {
		fmt.Fprintf(stderr, "tollgate report: %s: %v\n", *path, err)
		return 1
	}
	rep.Ledger, rep.From, rep.To = *path, *from, *to
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "tollgate report: %v\n", err)
			return 1
		}
		return 0
	}
	printReport(stdout, rep)
	return 0
}

// buildReport sums the ledger read from r per tenant over the UTC days
// [from, to] (empty: unbounded). Reservations and settlements count in the
// day window they were reserved in; a compacted day carry in its day; a
// compacted month carry, less the day carries of that month, only when the
// whole month is in range (its days are unknown).
func buildReport(r io.Reader, from, to, only string) (*report, error) {
	inRange := func(day string) bool {
		return (from == "" || day >= from) && (to == "" || day <= to)
	}
	monthInRange := func(month string) bool {
		first, err := time.Parse("2006-01", month)
		if err != nil {
			return false
		}
		last := first.AddDate(0, 1, -1)
		return inRange(first.Format(time.DateOnly)) && inRange(last.Format(time.DateOnly))
	}
	tenants := map[string]*tenantReport{}
	get := func(t string) *tenantReport {
		tr, ok := tenants[t]
		if !ok {
			tr = &tenantReport{Tenant: t}
			tenants[t] = tr
		}
		return tr
	}
	type openKey struct{ tenant, id string }
	open := map[openKey]meter.Money{}
	monthCarry := map[[2]string]meter.Money{} // tenant, month
	dayCarry := map[[2]string]meter.Money{}   // tenant, month: day carries of the month
	err := meter.ReadLedger(r, func(e meter.LedgerEntry) error {
		if only != "" && e.Tenant != only {
			return nil
		}
		switch e.Op {
		case meter.LedgerCarry:
			if e.Day != "" {
				if len(e.Day) >= 7 {
					dayCarry[[2]string{e.Tenant, e.Day[:7]}] += e.Amount
				}
				if inRange(e.Day) {
					get(e.Tenant).carried += e.Amount
				}
			} else {
				monthCarry[[2]string{e.Tenant, e.Month}] += e.Amount
			}
		case meter.LedgerReserve:
			if inRange(e.Day) {
				open[openKey{e.Tenant, e.ID}] = e.Amount
			}
		case meter.LedgerSettle:
			k := openKey{e.Tenant, e.ID}
			if _, ok := open[k]; !ok {
				return nil // out of range, or its reserve was compacted away
			}
			delete(open, k)
			tr := get(e.Tenant)
			if e.Recovered {
				tr.Recovered++
				return nil
			}
			tr.Requests++
			tr.spend += e.Amount
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, amount := range monthCarry {
		if !monthInRange(k[1]) {
			continue
		}
		if rest := amount - dayCarry[k]; rest > 0 {
			get(k[0]).carried += rest
		}
	}
	for k, amount := range open {
		tr := get(k.tenant)
		tr.Open++
		tr.held += amount
	}
	rep := &report{Notes: reportNotes, Total: &tenantReport{Tenant: "TOTAL"}}
	for _, tr := range tenants {
		rep.Tenants = append(rep.Tenants, tr)
	}
	sort.Slice(rep.Tenants, func(i, j int) bool { return rep.Tenants[i].Tenant < rep.Tenants[j].Tenant })
	for _, tr := range append(rep.Tenants, rep.Total) {
		if tr != rep.Total {
			t := rep.Total
			t.Requests += tr.Requests
			t.Recovered += tr.Recovered
			t.Open += tr.Open
			t.spend += tr.spend
			t.carried += tr.carried
			t.held += tr.held
		}
	}
	for _, tr := range append(rep.Tenants, rep.Total) {
		tr.SpendUSD, tr.CarriedUSD, tr.TotalUSD, tr.HeldUSD =
			tr.spend.String(), tr.carried.String(), (tr.spend + tr.carried).String(), tr.held.String()
	}
	if rep.Tenants == nil {
		rep.Tenants = []*tenantReport{}
	}
	return rep, nil
}

func printReport(w io.Writer, rep *report) {
	span := "all days"
	switch {
	case rep.From != "" && rep.To != "":
		span = rep.From + " to " + rep.To
	case rep.From != "":
		span = "from " + rep.From
	case rep.To != "":
		span = "to " + rep.To
	}
	fmt.Fprintf(w, "Spend in %s, %s (UTC days)\n\n", rep.Ledger, span)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tenant\trequests\tspend_usd\tcarried_usd\ttotal_usd\trecovered\topen\theld_usd\t")
	for _, tr := range append(rep.Tenants, rep.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t\n", tr.Tenant, tr.Requests, tr.SpendUSD, tr.CarriedUSD, tr.TotalUSD,
			tr.Recovered, tr.Open, tr.HeldUSD)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
}

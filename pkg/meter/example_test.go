package meter_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/meter"
)

func ExampleCost() {
	catalog, err := meter.BuiltinCatalog()
	if err != nil {
		panic(err)
	}
	price, ok := catalog.Lookup("openai", "gpt-4o-2024-08-06", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println(ok)
	cost := meter.Cost(price, meter.Usage{InputTokens: 1200, CachedInputTokens: 1024, OutputTokens: 300, ReasoningTokens: 0})
	fmt.Println(cost)
	// Output:
	// true
	// 0.004720
}

func ExampleBudgets() {
	dir, err := os.MkdirTemp("", "ledger")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ledger, err := meter.OpenFileLedger(filepath.Join(dir, "spend.jsonl"), meter.FileLedgerOptions{})
	if err != nil {
		panic(err)
	}
	budgets := meter.NewBudgets(ledger, map[string]meter.Caps{"acme": {Daily: meter.MoneyFromUSD(1)}})
	defer budgets.Close()

	ctx := context.Background()
	res, err := budgets.Reserve(ctx, "acme", meter.MoneyFromUSD(0.75), "req-1")
	if err != nil {
		panic(err)
	}
	_, err = budgets.Reserve(ctx, "acme", meter.MoneyFromUSD(0.50), "req-2")
	fmt.Println(errors.Is(err, meter.ErrBudgetExceeded))

	if err := res.Settle(ctx, meter.MoneyFromUSD(0.0123)); err != nil {
		panic(err)
	}
	spend, err := budgets.Spent(ctx, "acme")
	if err != nil {
		panic(err)
	}
	fmt.Println(spend.Daily)
	// Output:
	// true
	// 0.012300
}

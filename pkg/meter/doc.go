// Package meter turns token usage into money and enforces per-tenant budgets.
//
// It has four parts:
//
//   - Money: exact amounts in picodollars (an int64), so the sum of many
//     request costs is exact. Convert at the edges with MoneyFromUSD and
//     Money.USD.
//   - Catalog: a versioned price list (USD per 1M tokens for input, output and
//     cached input, each line with an effective date). BuiltinCatalog embeds
//     public list prices (prices.yaml); Catalog.Override merges config
//     entries. Cost prices a Usage exactly.
//   - Token counting: EstimateTokens is a cheap over-estimate for reserving
//     budget before a request is sent; Tokenizer.CountTokens runs the real
//     BPE encoding to meter a stream that was cut before its usage chunk.
//   - Budgets: daily and monthly caps per tenant (UTC windows). Reserve holds
//     a worst-case amount atomically against both caps; Reservation.Settle
//     replaces it with the actual cost. Spend lives in a Store: FileLedger
//     (an append-only JSONL file with snapshots for fast start-up, the
//     default) or RedisLedger (shared by several replicas; holds expire
//     after HoldTTL, socket timeouts from RedisTimeoutsFor).
//
// A typical request:
//
//	price, ok := catalog.Lookup(provider, model, time.Now())
//	worst := meter.WorstCase(price, meter.EstimateTokens(prompt),
//		maxTokens, // or catalog.MaxOutputTokens(provider, model)
//		n)         // choices; every product saturates, never wraps
//	res, err := budgets.Reserve(ctx, tenant, worst, requestID)
//	if errors.Is(err, meter.ErrBudgetExceeded) { /* 429 */ }
//	...
//	err = res.Settle(ctx, meter.Cost(price, usage)) // or res.Release(ctx) on failure
package meter

package meter

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCost(t *testing.T) {
	gpt4o := Price{Input: usd(2.5), Output: usd(10), CachedInput: usd(1.25)}
	gemini := Price{Input: usd(0.075), Output: usd(0.30), CachedInput: usd(0.01875)}
	tests := []struct {
		name  string
		price Price
		usage Usage
		want  Money
	}{
		{"zero", gpt4o, Usage{}, 0},
		{"input and output", gpt4o, Usage{InputTokens: 1000, OutputTokens: 500}, 2500*Microdollar + 5000*Microdollar},
		{"cached subset of input", gpt4o, Usage{InputTokens: 1000, CachedInputTokens: 400, OutputTokens: 0},
			600*2500*Picodollar*1000 + 400*1250*Picodollar*1000},
		{"reasoning tokens are already in output", gpt4o, Usage{InputTokens: 10, OutputTokens: 100, ReasoningTokens: 80},
			10*2_500_000 + 100*10_000_000},
		{"cached above input is capped", gpt4o, Usage{InputTokens: 100, CachedInputTokens: 500}, 100 * 1_250_000},
		{"negative counts are zero", gpt4o, Usage{InputTokens: -5, OutputTokens: -1, CachedInputTokens: -3}, 0},
		{"one token of a sub-picodollar-free price", gemini, Usage{InputTokens: 1, CachedInputTokens: 1}, 18_750},
		{"a single output token", gemini, Usage{OutputTokens: 1}, 300_000},
		{"one million tokens cost the per-1M price", gpt4o, Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}, usd(12.5)},
		{"odd price rounds to the nearest picodollar", Price{Input: 3}, Usage{InputTokens: 500_000}, 2}, // 1.5 -> 2
		{"huge counts saturate", Price{Output: usd(1e6)}, Usage{OutputTokens: 1 << 62}, MaxMoney},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Cost(tt.price, tt.usage))
		})
	}
}

// TestCostSumIsExact prices 1000 requests of mixed usage across the built-in
// catalog and checks the Money sum against an exact rational computation.
func TestCostSumIsExact(t *testing.T) {
	c, err := BuiltinCatalog()
	require.NoError(t, err)
	entries := c.Entries()
	rng := rand.New(rand.NewPCG(1, 2))

	var sum Money
	want := new(big.Rat)
	var floatSum float64
	for i := 0; i < 1000; i++ {
		e := entries[rng.IntN(len(entries))]
		p, ok := c.Lookup(e.Provider, e.Model, e.Effective)
		require.True(t, ok)
		in := rng.Int64N(200_000)
		u := Usage{InputTokens: in, CachedInputTokens: rng.Int64N(in + 1), OutputTokens: rng.Int64N(30_000)}
		if i%7 == 0 {
			u.ReasoningTokens = u.OutputTokens / 2
		}
		cost := Cost(p, u)
		sum += cost
		floatSum += cost.USD()

		// Exact: USD per 1M from the decimal text of the price.
		cachedPerM := e.CachedInputPerM
		if cachedPerM == 0 {
			cachedPerM = e.InputPerM
		}
		r := new(big.Rat)
		r.Add(r, ratMul(u.InputTokens-u.CachedInputTokens, e.InputPerM))
		r.Add(r, ratMul(u.CachedInputTokens, cachedPerM))
		r.Add(r, ratMul(u.OutputTokens, e.OutputPerM))
		want.Add(want, r)
	}
	wantPico := new(big.Rat).Mul(want, new(big.Rat).SetInt64(int64(Dollar)))
	require.True(t, wantPico.IsInt(), "every built-in price is whole picodollars per token")
	assert.Equal(t, wantPico.Num().Int64(), int64(sum), "sum %s", sum)
	assert.InDelta(t, floatSum, sum.USD(), 1e-6)
}

// ratMul is tokens * perM / 1e6 USD, with perM taken from its shortest decimal
// text so float binary noise does not leak in.
func ratMul(tokens int64, perM float64) *big.Rat {
	p, ok := new(big.Rat).SetString(big.NewFloat(perM).Text('g', -1))
	if !ok {
		panic("bad price")
	}
	r := new(big.Rat).Mul(p, new(big.Rat).SetInt64(tokens))
	return r.Quo(r, new(big.Rat).SetInt64(1_000_000))
}

func BenchmarkCost(b *testing.B) {
	p := Price{Input: usd(2.5), Output: usd(10), CachedInput: usd(1.25)}
	u := Usage{InputTokens: 1234, CachedInputTokens: 512, OutputTokens: 789, ReasoningTokens: 100}
	b.ReportAllocs()
	var sink Money
	for b.Loop() {
		sink += Cost(p, u)
	}
	_ = sink
}

func TestCostNeverWraps(t *testing.T) {
	gpt := Price{Input: MoneyFromUSD(2.5), Output: MoneyFromUSD(10), CachedInput: MoneyFromUSD(1.25)}
	huge := Price{Output: 1_190_112_520_884_487_201}
	tests := []struct {
		name string
		p    Price
		u    Usage
		want Money
	}{
		{"max tokens everywhere", gpt, Usage{InputTokens: math.MaxInt64, OutputTokens: math.MaxInt64, CachedInputTokens: math.MaxInt64}, MaxMoney},
		{"quotient of all ones used to wrap to $0", huge, Usage{OutputTokens: 15_500_000}, MaxMoney},
		{"sum saturates", Price{Input: MaxMoney, Output: MaxMoney}, Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}, MaxMoney},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Cost(tt.p, tt.u))
		})
	}
}

func TestWorstCase(t *testing.T) {
	p := Price{Input: MoneyFromUSD(2.5), Output: MoneyFromUSD(10)}
	tests := []struct {
		name              string
		prompt, output, n int64
		want              Money
	}{
		{"one choice", 1000, 500, 1, MoneyFromUSD(0.0025 + 0.005)},
		{"n choices pay output n times, prompt once", 1000, 500, 4, MoneyFromUSD(0.0025 + 0.02)},
		{"n below 1 counts as 1", 1000, 500, 0, MoneyFromUSD(0.0025 + 0.005)},
		{"negative counts are 0", -5, -5, 3, 0},
		{"n = 2^62 saturates instead of wrapping", 10, 1 << 31, 1 << 62, MaxMoney},
		{"output * n overflows int64", 0, math.MaxInt64, 2, MaxMoney},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, WorstCase(p, tt.prompt, tt.output, tt.n))
		})
	}
}

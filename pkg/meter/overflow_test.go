package meter

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"testing"
)

// exactCost is round(tokens*perM/1e6) (halves up) in arbitrary precision.
func exactCost(tokens int64, perM Money) *big.Int {
	n := new(big.Int).Mul(big.NewInt(tokens), big.NewInt(int64(perM)))
	n.Add(n, big.NewInt(tokensPerPriceUnit/2))
	return n.Quo(n, big.NewInt(tokensPerPriceUnit))
}

// TestCostOverflowBoundary prices token counts right at the edges of the
// 128-bit intermediate: where the high word of tokens*price reaches 1e6 (the
// divisor; one more and a 128-by-64-bit division would overflow) and where
// the quotient crosses the int64 range. Cost must not panic, and it must
// either be at least the exact cost or saturate at MaxMoney; it must never
// wrap to a small or negative amount that a budget check would accept.
func TestCostOverflowBoundary(t *testing.T) {
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	maxMoney := big.NewInt(int64(MaxMoney))
	prices := []Money{
		2_000_001, // the cheapest price whose boundary count fits in an int64
		usd(0.0043), usd(0.075), usd(1), usd(2.5), usd(10), usd(75), usd(1e6), MaxMoney,
	}
	for _, perM := range prices {
		var counts []int64
		// High word == divisor: tokens = ceil(1e6 * 2^64 / perM).
		hi := new(big.Int).Mul(big.NewInt(tokensPerPriceUnit), two64)
		hi.Add(hi, big.NewInt(int64(perM)-1))
		hi.Quo(hi, big.NewInt(int64(perM)))
		// Quotient == MaxMoney: tokens = MaxMoney * 1e6 / perM.
		q := new(big.Int).Mul(maxMoney, big.NewInt(tokensPerPriceUnit))
		q.Quo(q, big.NewInt(int64(perM)))
		for _, b := range []*big.Int{hi, q} {
			for d := int64(-2); d <= 2; d++ {
				n := new(big.Int).Add(b, big.NewInt(d))
				if n.Sign() > 0 && n.IsInt64() {
					counts = append(counts, n.Int64())
				}
			}
		}
		counts = append(counts, math.MaxInt64)
		for _, tokens := range counts {
			exact := exactCost(tokens, perM)
			for _, c := range []struct {
				name  string
				price Price
				usage Usage
			}{
				{"input", Price{Input: perM}, Usage{InputTokens: tokens}},
				{"output", Price{Output: perM}, Usage{OutputTokens: tokens}},
				{"cached", Price{CachedInput: perM}, Usage{InputTokens: tokens, CachedInputTokens: tokens}},
			} {
				t.Run(fmt.Sprintf("%s/%d/%d", c.name, perM, tokens), func(t *testing.T) {
					var got Money
					func() {
						defer func() {
							if r := recover(); r != nil {
								t.Fatalf("Cost panicked: %v", r)
							}
						}()
						got = Cost(c.price, c.usage)
					}()
					if exact.Cmp(maxMoney) > 0 {
						if got != MaxMoney {
							t.Fatalf("exact cost %s exceeds MaxMoney, got %d, want saturation at MaxMoney", exact, got)
						}
						return
					}
					if got != MaxMoney && big.NewInt(int64(got)).Cmp(exact) < 0 {
						t.Fatalf("got %d, below the exact cost %s", got, exact)
					}
				})
			}
		}
	}
}

// TestMoneyFromUSDSaturatesAtTheEdge converts the dollar value of MaxMoney
// back: as a float it rounds to exactly 2^63 picodollars, one past the
// range, and must saturate rather than overflow into a negative amount.
func TestMoneyFromUSDSaturatesAtTheEdge(t *testing.T) {
	if got := MoneyFromUSD(MaxMoney.USD()); got != MaxMoney {
		t.Fatalf("MoneyFromUSD(MaxMoney.USD()) = %d, want MaxMoney", got)
	}
	// Around the edge the conversion never goes down.
	f := MaxMoney.USD()
	for range 64 {
		f = math.Nextafter(f, 0)
	}
	prev := MoneyFromUSD(f)
	for range 128 {
		f = math.Nextafter(f, math.Inf(1))
		got := MoneyFromUSD(f)
		if got < prev {
			t.Fatalf("MoneyFromUSD(%v) = %d, below %d for a smaller amount", f, got, prev)
		}
		prev = got
	}
}

func TestAddSat(t *testing.T) {
	for _, c := range []struct{ a, b, want Money }{
		{1, 2, 3},
		{MaxMoney - 1, 1, MaxMoney},
		{MaxMoney, 1, MaxMoney},
		{MaxMoney - 5, 10, MaxMoney},
		{MaxMoney/2 + 1, MaxMoney/2 + 1, MaxMoney},
		{MaxMoney, MaxMoney, MaxMoney},
	} {
		if got := addSat(c.a, c.b); got != c.want {
			t.Errorf("addSat(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestBudgetsHugeReservationCannotWrapPastCap holds a small amount, then
// asks for one so large that spent + held + requested overflows an int64: the
// sum must saturate and the cap must reject it, not wrap to a negative total
// that passes the check.
func TestBudgetsHugeReservationCannotWrapPastCap(t *testing.T) {
	for _, sf := range storeFactories() {
		t.Run(sf.name, func(t *testing.T) {
			ctx := testCtx(t)
			store, _ := sf.new(t)
			b := NewBudgets(store, nil, WithDefaultCaps(Caps{Daily: 10 * Dollar, Monthly: 100 * Dollar}), WithClock(newFakeClock(t0).Now))
			_, err := b.Reserve(ctx, "t1", 5*Dollar, "small")
			if err != nil {
				t.Fatal(err)
			}
			for _, amount := range []Money{MaxMoney, MaxMoney - Dollar, MaxMoney - 5*Dollar + 1} {
				_, err := b.Reserve(ctx, "t1", amount, fmt.Sprintf("huge-%d", amount))
				if !errors.Is(err, ErrBudgetExceeded) {
					t.Fatalf("reserve %d on top of 5 USD held under a 10 USD cap: %v, want ErrBudgetExceeded", amount, err)
				}
			}
		})
	}
}

package meter

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Money is an amount of US dollars in picodollars (1e-12 USD).
//
// Integer arithmetic keeps sums exact: adding the cost of a million requests
// gives exactly the sum of their costs, with no float drift. The range of an
// int64 in picodollars is about ±9.2 million USD, far above any per-tenant
// daily or monthly spend this package tracks. Convert at the edges only, with
// MoneyFromUSD and USD.
type Money int64

// Common amounts.
const (
	Picodollar  Money = 1
	Nanodollar  Money = 1_000
	Microdollar Money = 1_000_000
	Cent        Money = 10_000_000_000
	Dollar      Money = 1_000_000_000_000
)

// MaxMoney is the largest representable amount.
const MaxMoney Money = math.MaxInt64

// MoneyFromUSD converts a float amount of USD to Money, rounding to the
// nearest picodollar. Values beyond the representable range saturate; NaN
// converts to 0.
func MoneyFromUSD(f float64) Money {
	if math.IsNaN(f) {
		return 0
	}
	p := math.Round(f * float64(Dollar))
	switch {
	case p >= math.MaxInt64:
		return MaxMoney
	case p <= math.MinInt64:
		return math.MinInt64
	}
	return Money(p)
}

// USD returns the amount as a float64 number of dollars, for display and
// metrics. Do arithmetic on Money, not on this value.
func (m Money) USD() float64 {
	whole := m / Dollar
	frac := m % Dollar
	return float64(whole) + float64(frac)/float64(Dollar)
}

// String formats the amount in dollars with at least six decimals and as many
// more as needed to be exact: "0.000123", "2.500000", "0.000000000001".
func (m Money) String() string {
	var b strings.Builder
	u := uint64(m)
	if m < 0 {
		b.WriteByte('-')
		u = uint64(-(m + 1)) + 1 // also correct for math.MinInt64
	}
	whole := u / uint64(Dollar)
	frac := u % uint64(Dollar)
	b.WriteString(strconv.FormatUint(whole, 10))
	b.WriteByte('.')
	digits := strconv.FormatUint(frac, 10)
	digits = strings.Repeat("0", 12-len(digits)) + digits
	digits = strings.TrimRight(digits, "0")
	if len(digits) < 6 {
		digits += strings.Repeat("0", 6-len(digits))
	}
	b.WriteString(digits)
	return b.String()
}

// mulDivRound returns round(a*b/d) for non-negative a, b and positive d,
// computed with a 128-bit intermediate so the product cannot overflow. Halves
// round up. The result saturates at MaxMoney (also for d == 0); it never
// wraps or panics.
func mulDivRound(a, b, d uint64) Money {
	hi, lo := bits.Mul64(a, b)
	if d == 0 || hi >= d { // the quotient needs more than 64 bits (Div64 would panic)
		return MaxMoney
	}
	q, r := bits.Div64(hi, lo, d)
	if q > math.MaxInt64 {
		return MaxMoney
	}
	if r >= d-r { // r*2 >= d without overflow; q+1 <= 2^63 cannot wrap
		q++
	}
	if q > math.MaxInt64 {
		return MaxMoney
	}
	return Money(q)
}

// mulSat multiplies two non-negative int64 counts, saturating at
// math.MaxInt64.
func mulSat(a, b int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// addSat adds two non-negative amounts, saturating at MaxMoney.
func addSat(a, b Money) Money {
	if a > MaxMoney-b {
		return MaxMoney
	}
	return a + b
}

package meter

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMoneyString(t *testing.T) {
	tests := []struct {
		m    Money
		want string
	}{
		{0, "0.000000"},
		{123 * Microdollar, "0.000123"},
		{Picodollar, "0.000000000001"},
		{2*Dollar + 50*Cent, "2.500000"},
		{Dollar + 1, "1.000000000001"},
		{-123 * Microdollar, "-0.000123"},
		{MaxMoney, "9223372.036854775807"},
		{math.MinInt64, "-9223372.036854775808"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.m.String())
		})
	}
}

func TestMoneyFromUSD(t *testing.T) {
	tests := []struct {
		name string
		usd  float64
		want Money
	}{
		{"zero", 0, 0},
		{"dollars", 2.5, 2*Dollar + 50*Cent},
		{"sub-cent price", 0.075, 75 * Cent / 10},
		{"gemini cached", 0.01875, 18_750_000_000},
		{"picodollar", 1e-12, 1},
		{"negative", -1.25, -(Dollar + 25*Cent)},
		{"nan", math.NaN(), 0},
		{"saturates", 1e20, MaxMoney},
		{"saturates negative", -1e20, math.MinInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, MoneyFromUSD(tt.usd))
		})
	}
}

func TestMoneyUSDRoundTrip(t *testing.T) {
	for _, usd := range []float64{0, 0.000123, 1.5, 2.5, 10, 0.01875, 1234.567891} {
		assert.InDelta(t, usd, MoneyFromUSD(usd).USD(), 1e-12, "usd %v", usd)
	}
}

func TestMulDivRound(t *testing.T) {
	tests := []struct {
		name    string
		a, b, d uint64
		want    Money
	}{
		{"exact", 1000, 2_500_000_000_000, 1_000_000, 2_500_000_000},
		{"rounds half up", 1, 3, 2, 2},
		{"rounds down", 1, 4, 3, 1},
		{"128-bit intermediate", 1 << 40, 1 << 40, 1 << 30, 1 << 50},
		{"saturates", math.MaxUint64, math.MaxUint64, 1, MaxMoney},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, mulDivRound(tt.a, tt.b, tt.d))
		})
	}
}

// TestMulDivRoundBoundaries walks the edges of the 128-bit intermediate: the
// largest exact quotient, the round-up that would cross MaxInt64, the
// quotient of all ones whose round-up used to wrap to 0, and the high word
// that would make Div64 panic.
func TestMulDivRoundBoundaries(t *testing.T) {
	const d = 1_000_000
	// a*b = (2^64-1)*1e6 + 500000: quotient 2^64-1, remainder rounds up.
	// Before the fix q++ wrapped to 0: $0 for an astronomic amount.
	wrapA, wrapB := uint64(15_500_000), uint64(1_190_112_520_884_487_201)
	tests := []struct {
		name    string
		a, b, d uint64
		want    Money
	}{
		{"largest exact", math.MaxInt64, d, d, MaxMoney},
		{"just below max, rounds down", math.MaxInt64 - 1, 1, 1, MaxMoney - 1},
		{"rounds up onto max", 2*(math.MaxInt64-1) + 1, 1, 2, MaxMoney},
		{"rounds up past max", 2*math.MaxInt64 + 1, 1, 2, MaxMoney},
		{"quotient of all ones, rounds up", wrapA, wrapB, d, MaxMoney},
		{"high word d-1", 1 << 63, 2*d - 1, d, MaxMoney},
		{"high word d", 1 << 63, 2 * d, d, MaxMoney},
		{"zero divisor", 1, 1, 0, MaxMoney},
		{"tokens near 4.3e15 at $2.15/1M", 4_300_000_000_000_000, 2_150_000_000_000, d, MaxMoney},
		{"tokens near 4.3e15 at $0.002/1M", 4_300_000_000_000_000, 2_000_000_000, d, 8_600_000_000_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.NotPanics(t, func() {
				assert.Equal(t, tt.want, mulDivRound(tt.a, tt.b, tt.d))
			})
		})
	}
}

func TestMulSat(t *testing.T) {
	assert.Equal(t, int64(6), mulSat(2, 3))
	assert.Equal(t, int64(math.MaxInt64), mulSat(1<<62, 2))
	assert.Equal(t, int64(math.MaxInt64), mulSat(math.MaxInt64, math.MaxInt64))
	assert.Equal(t, int64(1<<62), mulSat(1<<61, 2))
}

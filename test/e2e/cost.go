package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strconv"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// ExpectedCost is the price of usage on model at the test prices, computed
// independently of pkg/meter with exact rational arithmetic.
func ExpectedCost(model string, prompt, completion, cached int64) float64 {
	p := Prices[model]
	perM := func(tokens int64, usd float64) *big.Rat {
		r, _ := new(big.Rat).SetString(strconv.FormatFloat(usd, 'g', -1, 64))
		r.Mul(r, big.NewRat(tokens, 1_000_000))
		return r
	}
	total := perM(prompt-cached, p[0])
	total.Add(total, perM(cached, p[2]))
	total.Add(total, perM(completion, p[1]))
	f, _ := total.Float64()
	return f
}

package meter

// Usage is the token usage of one request, normalised to OpenAI semantics.
type Usage struct {
	// InputTokens is every prompt token, cached or not (OpenAI prompt_tokens).
	InputTokens int64
	// OutputTokens is every generated token, reasoning included (OpenAI
	// completion_tokens).
	OutputTokens int64
	// CachedInputTokens is the subset of InputTokens read from the provider's
	// prompt cache (OpenAI prompt_tokens_details.cached_tokens).
	CachedInputTokens int64
	// ReasoningTokens is the subset of OutputTokens spent on hidden reasoning
	// (completion_tokens_details.reasoning_tokens). Informational: it is not
	// charged again.
	ReasoningTokens int64
	// Estimated is true when the counts were computed locally (a stream cut
	// before its usage chunk) rather than reported by the provider.
	Estimated bool
}

const tokensPerPriceUnit = 1_000_000

// Cost returns the exact cost of u at price p, rounded to the nearest
// picodollar (prices with at most six decimals per 1M tokens, which is every
// real price, need no rounding at all):
//
//	cached   = min(CachedInputTokens, InputTokens)
//	cost     = cached*CachedInput + (InputTokens-cached)*Input + OutputTokens*Output   (per 1M)
//
// Negative counts are treated as 0. The arithmetic is 128-bit and saturates
// at MaxMoney: no count or price makes it wrap or panic. ReasoningTokens are not added: OpenAI,
// DeepSeek and Groq already include them in OutputTokens.
//
// Providers whose usage differs must be normalised by the usage extractor:
//   - Anthropic: usage.input_tokens excludes cache reads and writes. Set
//     InputTokens = input_tokens + cache_read_input_tokens +
//     cache_creation_input_tokens and CachedInputTokens =
//     cache_read_input_tokens. Cache writes are then charged at the base
//     input price, while Anthropic bills them at 1.25x (5-minute) or 2x
//     (1-hour): an undercount of 0.25x/1x input price per cache-write token.
//   - Gemini: promptTokenCount includes cachedContentTokenCount (as OpenAI),
//     but thoughtsTokenCount is not part of candidatesTokenCount: set
//     OutputTokens = candidatesTokenCount + thoughtsTokenCount. Context-cache
//     storage (per hour) and long-context tiers are not modelled.
//   - DeepSeek: prompt_tokens includes prompt_cache_hit_tokens, which is
//     CachedInputTokens.
func Cost(p Price, u Usage) Money {
	in := max(u.InputTokens, 0)
	cached := min(max(u.CachedInputTokens, 0), in)
	out := max(u.OutputTokens, 0)
	total := tokenCost(uint64(in-cached), p.Input)
	total = addSat(total, tokenCost(uint64(cached), p.CachedInput))
	total = addSat(total, tokenCost(uint64(out), p.Output))
	return total
}

// WorstCase is the most a request may cost, for a reservation: promptTokens
// at the (uncached) input price plus n choices of up to outputTokens each at
// the output price. The prompt is counted once, as providers bill it once
// whatever n is. Negative counts count as 0 and n below 1 as 1. Every product
// and sum saturates at MaxMoney: absurd inputs reserve the maximum (and so
// exceed any cap) instead of wrapping to a small amount.
func WorstCase(p Price, promptTokens, outputTokens, n int64) Money {
	out := mulSat(max(outputTokens, 0), max(n, 1))
	return Cost(p, Usage{InputTokens: promptTokens, OutputTokens: out})
}

// tokenCost is tokens*perM/1e6, exact to the picodollar.
func tokenCost(tokens uint64, perM Money) Money {
	if tokens == 0 || perM <= 0 {
		return 0
	}
	return mulDivRound(tokens, uint64(perM), tokensPerPriceUnit)
}

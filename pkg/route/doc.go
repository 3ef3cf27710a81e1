// Package route is complexity routing: a fast scorer maps a request to a
// tier ("simple", "complex", or any configured ladder of thresholds) and a
// virtual alias such as "auto" to the real alias configured for that tier
// ("small" or "large"), with per-tenant overrides, a shadow mode that only
// records what routing would have done, and max_tokens defaults and caps per
// alias and tier.
//
// The scorer is a single pass over the request text with no allocation: it
// looks at prompt length, code (fences, code keywords, symbol density), math
// (math words, operators between digits), multi-step reasoning markers
// ("step", "explain", "compare", "design", ...), conversation depth and
// whether tools are offered. Each feature is normalised to [0,1]; the score
// is their weighted sum, capped at 1. It is a heuristic, not a classifier:
// run it in shadow mode first and compare its tiers with real outcomes.
package route

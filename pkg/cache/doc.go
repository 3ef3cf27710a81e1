// Package cache is Tollgate's response cache for OpenAI-compatible chat
// completions: an exact tier (canonicalised request -> response) and a
// semantic tier (embedding of the last user turn -> nearest cached prompt),
// both partitioned so that an answer can only be served to the same tenant,
// model alias, system prompt and tools, generation parameters and (for the
// semantic tier) conversation history.
//
// The request path is:
//
//	r, err := c.NewRequest(tenant, alias, body) // keys; error only for non-JSON bodies
//	if ok, _ := r.Cacheable(); ok {
//		if hit, ok := c.Lookup(ctx, r); ok {
//			// serve hit.Body, or llm.ReplaySSE(hit.Body, r.IncludeUsage()) when r.Stream()
//		}
//	}
//	// ... upstream answers; the caller calls r.Bypass(reason) for no-store,
//	// guardrail-modified or cut responses, then:
//	_ = c.Store(ctx, r, completionJSON)
//
// A semantic candidate must reach the configured cosine threshold and then
// pass the difference guard, which vetoes prompts that differ in numbers,
// named entities, negation, question word or a substituted content word.
// With the built-in embedder the shipped default also runs a learned pair
// verifier (verify.go) on the nearest entry, down to a cosine floor of
// VerifierFloor; it decides whether the two prompts ask the same thing.
//
// The built-in embedder needs no network (hashed word/character n-grams,
// TF-IDF weighted, with an IDF table fitted offline and embedded); any
// OpenAI-compatible /v1/embeddings endpoint can replace it. With the redis
// backend, entries and vectors live in Redis and every replica keeps its
// in-process index warm from it (see redis.go); Redis failures degrade to the
// local tier and are counted, never returned to clients.
package cache

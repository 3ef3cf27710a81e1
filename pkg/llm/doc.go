// Package llm knows the OpenAI-compatible wire format: it extracts what the
// gateway needs from requests (model, stream flags, token limits, the text of
// each message), rewrites requests in place without re-encoding them, reads
// usage from responses (including cached and reasoning tokens and streamed
// usage chunks), decodes and encodes server-sent events, and renders
// OpenAI-shaped error bodies. Besides chat, completions and embeddings it
// reads the Responses API (OpResponses, POST /v1/responses): its request's
// input and instructions, its {input_tokens, output_tokens} usage, and its
// typed stream events (ParseResponsesEvent).
//
// Parsing is allocation-light (gjson/sjson over the raw bytes) because it runs
// on every request in the ext_proc hot path.
//
// # Limits
//
// Every parser (ParseRequest, ParseResponse, ParseUsage, ParseChunk,
// ParseResponsesEvent) first
// runs one linear, non-recursive scan over the bytes that validates the JSON
// and enforces two rules before anything else reads the body:
//
//   - Nesting: objects and arrays may nest at most MaxDepth (64) levels;
//     deeper bodies fail with ErrTooDeep. The scan uses a fixed stack, so a
//     body nested millions of levels deep costs one pass and no memory
//     proportional to its depth. Body size is bounded by the caller (the
//     ext_proc server refuses requests above listen.max_body_bytes before
//     parsing).
//   - Duplicate keys: an object that names the same key twice, at any depth
//     and compared after unescaping ("max_tokens" equals "max\u005ftokens"),
//     fails with an error wrapping ErrDuplicateKey and naming the key's path,
//     e.g. `duplicate object key "messages[1].role"`. JSON parsers disagree
//     on which duplicate wins, so accepting one would let a client pass the
//     gateway's checks with one value while the provider obeys the other.
//     For responses and stream chunks the same rule makes a body with two
//     "usage" objects or two token counts malformed: its sender cannot pick
//     which one is billed, and the gateway meters it from an estimate.
//
// ParseRequest also bounds the numbers that drive budget reservations: n must
// be 1..MaxN (128) and max_tokens / max_completion_tokens (max_output_tokens
// for the Responses API) 1..MaxOutputTokens (2^31); anything else is a
// *FieldError. When both token limits are present
// Request.MaxTokens is the larger, and CapMaxTokens lowers both.
package llm

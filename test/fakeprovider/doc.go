// Package fakeprovider is an OpenAI-compatible HTTP upstream for tests.
//
// It speaks OpenAI's wire format for POST /v1/chat/completions (JSON and
// server-sent events), POST /v1/completions (JSON and SSE), POST
// /v1/embeddings, POST /v1/responses (JSON and typed SSE events ending with
// response.completed, which carries the usage; no [DONE]) and GET
// /v1/models, and records every request it receives so
// tests can assert what reached the provider (how many calls, which headers,
// the exact body after redaction).
//
// Everything it returns is a deterministic function of the request, so tests
// can compute the expected reply, usage and cost:
//
//   - reply text: [DefaultReply], or Options.Reply, or the x-fake-reply header,
//     or the last user message with x-fake-reply-mode: echo (Options.ReplyMode),
//     or [DegradedReply] with the fault "degraded". A max_tokens /
//     max_completion_tokens smaller than the reply's word count truncates the
//     reply to that many words and sets finish_reason "length" (for
//     responses, max_output_tokens and status "incomplete").
//   - prompt_tokens: see [ChatPromptTokens]; for chat, the whitespace-separated
//     words of every message's text content plus 3 per message; for
//     completions and embeddings, the words of every prompt/input string (a
//     token-array input counts one per token); for responses (input_tokens,
//     see [ResponsesInputTokens]), the words of the instructions and of every
//     input message's text plus 3 per text (a string input is one message).
//   - completion_tokens (output_tokens): the number of whitespace-separated
//     words in the reply.
//   - total_tokens = prompt_tokens + completion_tokens; cached_tokens and
//     reasoning_tokens are 0.
//   - x-fake-usage: prompt=N,completion=M,cached=C,reasoning=R replaces any of
//     those numbers (total stays their sum); Options.Usage does the same per
//     instance.
//
// Faults are chosen per request with the x-fake-fault header (or per instance
// with Options.Fault, used when the header is absent); several may be
// combined, separated by commas:
//
//	429                   429 with Retry-After: 1 and an OpenAI rate-limit error body
//	500, 503              OpenAI-shaped server errors
//	slow-first-byte=<dur> wait <dur> before the status line
//	cut-stream=<n>        write n SSE data events (the role chunk counts),
//	                      then drop the TCP connection
//	                      (no [DONE], no usage); for a non-streaming request,
//	                      send the headers and the first n bytes of the body
//	malformed-json        200 with a truncated JSON body (in a stream: one
//	                      truncated data event after the role chunk)
//	degraded              the reply is replaced by DegradedReply
//	model=<name>          the response's model field is <name>
//
// With Options.Azure it speaks Azure OpenAI's paths instead: POST
// /openai/deployments/{deployment}/chat/completions, /completions and
// /embeddings (no /v1/ paths, no model list), with the same bodies, usage
// and faults. Azure's own checks come before the faults:
//
//	no api-version query        404 Resource not found
//	no api-key header           401 (Authorization is not a credential;
//	                            with Options.APIKey, api-key must equal it)
//
// Streams have x-fake-chunks (Options.Chunks, default 4) content chunks,
// x-fake-chunk-delay (Options.ChunkDelay) apart; each event is flushed.
package fakeprovider

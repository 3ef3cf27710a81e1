// Package llm knows the OpenAI-compatible wire format: it extracts what the
// gateway needs from requests (model, stream flags, token limits, the text of
// each message), rewrites requests in place without re-encoding them, reads
// usage from responses (including cached and reasoning tokens and streamed
// usage chunks), decodes and encodes server-sent events, and renders
// OpenAI-shaped error bodies.
//
// Parsing is allocation-light (gjson/sjson over the raw bytes) because it runs
// on every request in the ext_proc hot path.
package llm

// Package compress shortens chat prompts before they are sent: it folds
// whitespace in prose, minifies JSON, drops repeated paragraphs and code
// blocks, and trims the oldest conversation turns to a token budget. It is
// deterministic (the same request always compresses to the same bytes) and
// idempotent, and it never touches what could change meaning:
//
//   - fenced code blocks (``` or ~~~), Markdown indented code lines and
//     inline code spans keep every byte; a line's leading indentation is
//     kept; tool results keep their whitespace (a file or a table may
//     depend on it);
//   - JSON is minified only when a whole message text, or a ```json block,
//     parses as one JSON document; strings, numbers and key order are kept;
//   - a repeated block is dropped only when it is at least MinDedupeBytes
//     long and an earlier copy is still in the request; system and developer
//     messages and the last user message are never shortened;
//   - trimming keeps system and developer messages, the request's tools and
//     everything from the last user message on, and drops whole turns, oldest
//     first, so a tool call is never separated from its result.
//
// Apply works on a request parsed by pkg/llm and rewrites its body once;
// only chat requests are changed (embedding inputs and completion prompts are
// returned as they are). The ext_proc server runs it after the request's
// other rewrites when compression is enabled for the alias or tenant.
package compress

// Package guard implements Tollgate's guardrails: detectors for personal
// data (structured PII; person names, street addresses and places), secrets
// and prompt injection, the actions applied to what they
// find (log, redact with typed placeholders, block), and a streaming scanner
// that holds back a window of text so that entities split across deltas are
// still caught.
//
// A Guard is built once per direction (input, output) from a Config and is
// safe for concurrent use. Each request gets a Session, which keeps
// placeholder numbering consistent across all messages of the request
// ("[EMAIL_1]" stands for the same address everywhere). Findings carry the
// detector, the type and the byte offsets of a match, never the matched
// value, so they can be written to an audit record.
//
//	g, err := guard.New(guard.DefaultConfig())
//	s := g.NewSession()
//	res := s.Check(userMessage)
//	if res.Blocked { /* reject: res.BlockedBy.Type names the reason */ }
//	forward(res.Text) // redacted when res.Modified
//
// Detectors are hand-written scanners keyed on cheap triggers ('@' for
// e-mail, digit runs for cards, SSNs, phones and IPv4, known prefixes for
// secrets, key words and entropy for unprefixed credentials, embedded
// gazetteers and an address grammar for names and addresses) rather than
// regular expressions. Prompt injection is scored by a
// logistic-regression model over hashed n-grams (package ngram), trained by
// pkg/guard/cmd/train and embedded in the binary.
package guard

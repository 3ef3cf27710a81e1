package fakeprovider

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request headers that steer the provider.
const (
	HeaderReply      = "x-fake-reply"
	HeaderReplyMode  = "x-fake-reply-mode"
	HeaderUsage      = "x-fake-usage"
	HeaderFault      = "x-fake-fault"
	HeaderChunks     = "x-fake-chunks"
	HeaderChunkDelay = "x-fake-chunk-delay"
)

// ReplyModeEcho makes the reply the last user message (chat) or the last prompt
// (completions), so tests can see what the provider received.
const ReplyModeEcho = "echo"

// DefaultReply is the reply when nothing else chooses one: 10 words, so 10
// completion tokens.
const DefaultReply = "Hello! This is a deterministic reply from the fake provider."

// DegradedReply replaces the reply under the "degraded" fault: a fixed wrong
// answer for evaluation tests.
const DegradedReply = "The answer is 42 regardless of the question."

// DefaultChunks is the number of content chunks in a stream unless chosen.
const DefaultChunks = 4

// Usage overrides token counts. A nil field keeps the computed value.
type Usage struct {
	Prompt     *int64
	Completion *int64
	Cached     *int64
	Reasoning  *int64
}

// Fault is a parsed set of fault directives (see the package documentation).
type Fault struct {
	// Status is 429, 500 or 503 when the request must fail with that status; 0 otherwise.
	Status int
	// SlowFirstByte delays the status line.
	SlowFirstByte time.Duration
	// CutAfter is the number of events (stream) or bytes (JSON) written before
	// the connection is dropped; -1 when the connection is not cut.
	CutAfter int
	// Malformed truncates the JSON body.
	Malformed bool
	// Degraded replaces the reply with DegradedReply.
	Degraded bool
	// Model, when set, is returned as the response's model field.
	Model string
}

// ErrBadDirective reports a fault or usage directive the provider does not understand.
var ErrBadDirective = errors.New("bad directive")

// ParseFault parses a comma-separated list of fault directives. The empty
// string is no fault.
func ParseFault(s string) (Fault, error) {
	f := Fault{CutAfter: -1}
	var errs []error
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, hasVal := strings.Cut(part, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		val = strings.TrimSpace(val)
		switch {
		case !hasVal && (name == "429" || name == "500" || name == "503"):
			f.Status, _ = strconv.Atoi(name)
		case !hasVal && name == "malformed-json":
			f.Malformed = true
		case !hasVal && name == "degraded":
			f.Degraded = true
		case hasVal && name == "slow-first-byte":
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("%w: slow-first-byte=%q: want a non-negative duration", ErrBadDirective, val))
				continue
			}
			f.SlowFirstByte = d
		case hasVal && name == "cut-stream":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%w: cut-stream=%q: want a non-negative integer", ErrBadDirective, val))
				continue
			}
			f.CutAfter = n
		case hasVal && name == "model":
			if val == "" {
				errs = append(errs, fmt.Errorf("%w: model= needs a name", ErrBadDirective))
				continue
			}
			f.Model = val
		default:
			errs = append(errs, fmt.Errorf("%w: unknown fault %q", ErrBadDirective, part))
		}
	}
	return f, errors.Join(errs...)
}

// ParseUsage parses "prompt=N,completion=M,cached=C,reasoning=R"; any subset
// may be given.
func ParseUsage(s string) (Usage, error) {
	var u Usage
	var errs []error
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if !ok || err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%w: usage %q: want name=non-negative integer", ErrBadDirective, part))
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "prompt":
			u.Prompt = &n
		case "completion":
			u.Completion = &n
		case "cached":
			u.Cached = &n
		case "reasoning":
			u.Reasoning = &n
		default:
			errs = append(errs, fmt.Errorf("%w: unknown usage field %q", ErrBadDirective, name))
		}
	}
	return u, errors.Join(errs...)
}

// behaviour is what one request asks of the provider: headers first, Options
// as the fallback.
type behaviour struct {
	reply      string
	replySet   bool
	echo       bool
	usage      Usage
	fault      Fault
	chunks     int
	chunkDelay time.Duration
}

func resolveBehaviour(h http.Header, o *Options) (behaviour, error) {
	b := behaviour{
		reply:      o.Reply,
		replySet:   o.Reply != "",
		echo:       strings.EqualFold(o.ReplyMode, ReplyModeEcho),
		usage:      o.Usage,
		chunks:     o.Chunks,
		chunkDelay: o.ChunkDelay,
	}
	if b.chunks <= 0 {
		b.chunks = DefaultChunks
	}
	var errs []error
	if vals := h.Values(HeaderReply); len(vals) > 0 {
		b.reply, b.replySet = vals[0], true
	}
	if v := h.Get(HeaderReplyMode); v != "" {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case ReplyModeEcho:
			b.echo = true
		case "fixed":
			b.echo = false
		default:
			errs = append(errs, fmt.Errorf("%w: %s %q: want echo or fixed", ErrBadDirective, HeaderReplyMode, v))
		}
	}
	if v := h.Get(HeaderUsage); v != "" {
		u, err := ParseUsage(v)
		if err != nil {
			errs = append(errs, err)
		}
		b.usage = mergeUsage(b.usage, u)
	}
	faultSpec := o.Fault
	if vals := h.Values(HeaderFault); len(vals) > 0 {
		faultSpec = strings.Join(vals, ",")
	}
	f, err := ParseFault(faultSpec)
	if err != nil {
		errs = append(errs, err)
	}
	b.fault = f
	if v := h.Get(HeaderChunks); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%w: %s %q: want a positive integer", ErrBadDirective, HeaderChunks, v))
		} else {
			b.chunks = n
		}
	}
	if v := h.Get(HeaderChunkDelay); v != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%w: %s %q: want a non-negative duration", ErrBadDirective, HeaderChunkDelay, v))
		} else {
			b.chunkDelay = d
		}
	}
	return b, errors.Join(errs...)
}

func mergeUsage(base, over Usage) Usage {
	if over.Prompt != nil {
		base.Prompt = over.Prompt
	}
	if over.Completion != nil {
		base.Completion = over.Completion
	}
	if over.Cached != nil {
		base.Cached = over.Cached
	}
	if over.Reasoning != nil {
		base.Reasoning = over.Reasoning
	}
	return base
}

// replyText picks the reply: degraded > explicit reply > echo > default.
func (b *behaviour) replyText(lastInput string) string {
	switch {
	case b.fault.Degraded:
		return DegradedReply
	case b.replySet:
		return b.reply
	case b.echo:
		return lastInput
	default:
		return DefaultReply
	}
}

// truncateWords keeps the first max words of s (max <= 0 keeps everything)
// and reports whether it cut anything.
func truncateWords(s string, limit int64) (string, bool) {
	if limit <= 0 {
		return s, false
	}
	var n int64
	inWord := false
	for i, r := range s {
		space := isSpace(r)
		if !space && !inWord {
			if n == limit {
				return strings.TrimRightFunc(s[:i], isSpace), true
			}
			n++
		}
		inWord = !space
	}
	return s, false
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', 0x85, 0xA0:
		return true
	}
	return r > 0xff && strings.ContainsRune("\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000", r)
}

// countWords is len(strings.Fields(s)) without allocating.
func countWords(s string) int64 {
	var n int64
	inWord := false
	for _, r := range s {
		space := isSpace(r)
		if !space && !inWord {
			n++
		}
		inWord = !space
	}
	return n
}

// splitChunks splits s into n pieces whose concatenation is s: on word
// starts when s has at least n words, on runes otherwise (at most one piece
// per rune; an empty s is one empty piece).
func splitChunks(s string, n int) []string {
	if n < 1 {
		n = 1
	}
	var starts []int // candidate cut points (byte offsets), excluding 0
	inWord := false
	for i, r := range s {
		space := isSpace(r)
		if !space && !inWord && i > 0 {
			starts = append(starts, i)
		}
		inWord = !space
	}
	if len(starts)+1 < n {
		starts = starts[:0]
		for i := range s {
			if i > 0 {
				starts = append(starts, i)
			}
		}
	}
	if len(starts)+1 < n {
		n = len(starts) + 1
	}
	pieces := make([]string, 0, n)
	prev := 0
	for k := 1; k < n; k++ {
		// Spread the n-1 cuts evenly over the candidates.
		cut := starts[k*(len(starts)+1)/n-1]
		pieces = append(pieces, s[prev:cut])
		prev = cut
	}
	return append(pieces, s[prev:])
}

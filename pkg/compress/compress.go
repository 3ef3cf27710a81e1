package compress

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
)

// Options selects the rules Apply runs. The zero value does nothing.
type Options struct {
	// Whitespace folds runs of spaces and tabs, trailing whitespace and
	// runs of blank lines in prose; code is kept byte for byte, and tool
	// results are left as they are.
	Whitespace bool
	// JSON minifies a message text that is one JSON object or array, and
	// fenced ```json blocks.
	JSON bool
	// Dedupe drops a paragraph or fenced block of at least MinDedupeBytes
	// that repeats one seen earlier in the conversation.
	Dedupe bool
	// MaxPromptTokens trims the oldest conversation turns until the
	// messages fit in this many tokens; 0 = no trimming.
	MaxPromptTokens int64
}

// Enabled reports whether any rule is on.
func (o Options) Enabled() bool {
	return o.Whitespace || o.JSON || o.Dedupe || o.MaxPromptTokens > 0
}

// MinDedupeBytes is the shortest block Dedupe removes: short repeats
// ("Thanks!", "Yes.", a list item) carry meaning where they stand.
const MinDedupeBytes = 64

// Omitted replaces a message text whose every block was a duplicate, so
// that the message keeps its place and a non-empty content.
const Omitted = "[repeated content omitted]"

// Counter counts the tokens of a text. meter.EstimateTokens is one; a
// closure over meter.Tokenizer.CountTokens counts exactly.
type Counter func(text string) int64

// Result says what Apply did.
type Result struct {
	// Request is the rewritten request (parsed again from its new body), or
	// the input request when nothing changed.
	Request *llm.Request
	Changed bool
	// TokensBefore and TokensAfter count the request's prompt text
	// (llm.Request.PromptText) with the Counter.
	TokensBefore, TokensAfter int64
	// Texts is how many message texts the whitespace and JSON rules
	// changed; Duplicates how many blocks Dedupe dropped; Trimmed how many
	// messages the token budget dropped.
	Texts, Duplicates, Trimmed int
}

// Saved is TokensBefore - TokensAfter (never negative).
func (r Result) Saved() int64 { return max(r.TokensBefore-r.TokensAfter, 0) }

// message is one entry of "messages" as Apply sees it.
type message struct {
	raw     string
	role    string
	texts   []part
	calls   []string // assistant tool_calls[].id
	extra   string   // raw tool_calls / function_call: prompt tokens too
	callRef string   // tool message's tool_call_id
	tokens  int64
	keep    bool
}

// part is one text of a message's content: the whole string, or a text part.
type part struct {
	path string // within the message: "content" or "content.N.text"
	text string
	out  string
}

// Apply compresses a chat request by opts and rewrites its body once. Only
// chat requests are changed (a completion prompt or an embedding input is
// returned as is). count measures tokens for the budget and the Result;
// nil means meter.EstimateTokens.
//
// The rules run in this order: whitespace and JSON on each text, then the
// budget (dropping whole turns, oldest first), then Dedupe on what is kept,
// so a dropped turn never held the only copy of a block.
func Apply(req *llm.Request, opts Options, count Counter) (Result, error) {
	if count == nil {
		count = meter.EstimateTokens
	}
	res := Result{Request: req}
	if req.Op != llm.OpChat || !opts.Enabled() {
		return res, nil
	}
	res.TokensBefore = count(req.PromptText())
	res.TokensAfter = res.TokensBefore
	msgs := parseMessages(req.Body)
	if len(msgs) == 0 {
		return res, nil
	}
	changed := false
	for i := range msgs {
		o := opts
		if r := msgs[i].role; r == "tool" || r == "function" {
			// Tool output is often a file, a table or a log whose spacing
			// matters even without fences: only JSON is minified.
			o.Whitespace = false
		}
		for j := range msgs[i].texts {
			p := &msgs[i].texts[j]
			p.out = rewrite(p.text, o)
			if p.out != p.text {
				res.Texts++
				changed = true
			}
		}
	}
	if opts.MaxPromptTokens > 0 {
		res.Trimmed = trim(msgs, opts.MaxPromptTokens, count)
		changed = changed || res.Trimmed > 0
	} else {
		for i := range msgs {
			msgs[i].keep = true
		}
	}
	if opts.Dedupe {
		res.Duplicates = dedupe(msgs)
		changed = changed || res.Duplicates > 0
	}
	if !changed {
		return res, nil
	}
	body, err := render(req.Body, msgs)
	if err != nil {
		return res, err
	}
	out := rebuilt(req, body, msgs)
	res.Request, res.Changed = out, true
	res.TokensAfter = count(out.PromptText())
	return res, nil
}

// parseMessages reads "messages" from a body llm.ParseRequest accepted.
func parseMessages(body []byte) []message {
	arr := gjson.GetBytes(body, "messages")
	msgs := make([]message, 0, 8)
	arr.ForEach(func(_, m gjson.Result) bool {
		msg := message{raw: m.Raw}
		// One pass over the keys: each Get would scan the whole message.
		m.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "role":
				msg.role = v.Str
			case "content":
				msg.texts = contentTexts(v)
			case "tool_calls":
				msg.extra += v.Raw
				v.ForEach(func(_, tc gjson.Result) bool {
					if id := tc.Get("id").Str; id != "" {
						msg.calls = append(msg.calls, id)
					}
					return true
				})
			case "function_call":
				msg.extra += v.Raw
			case "tool_call_id":
				msg.callRef = v.Str
			}
			return true
		})
		msgs = append(msgs, msg)
		return true
	})
	return msgs
}

// contentTexts lists the texts of a message's content.
func contentTexts(c gjson.Result) []part {
	switch {
	case c.Type == gjson.String:
		return []part{{path: "content", text: c.Str}}
	case c.IsArray():
		var out []part
		j := 0
		c.ForEach(func(_, p gjson.Result) bool {
			if t := p.Get("text"); t.Type == gjson.String {
				out = append(out, part{path: "content." + strconv.Itoa(j) + ".text", text: t.Str})
			}
			j++
			return true
		})
		return out
	}
	return nil
}

// rewrite runs the whitespace and JSON rules on one text.
func rewrite(text string, opts Options) string {
	if opts.JSON {
		if m, ok := minifyJSON(text); ok {
			return m
		}
	}
	if !opts.Whitespace && !opts.JSON {
		return text
	}
	if settled(text) {
		return text // the common case: nothing either rule could change
	}
	blocks := splitBlocks(text)
	for i := range blocks {
		b := &blocks[i]
		switch {
		case b.fence && opts.JSON:
			b.text = minifyFence(b.text)
		case !b.fence && opts.Whitespace:
			b.text = foldProse(b.text)
		}
	}
	if !opts.Whitespace {
		// Without the whitespace rule the text between blocks stays as
		// written: only a changed fence is replaced in place.
		return replaceFences(text, blocks)
	}
	out := joinBlocks(blocks)
	if out == "" {
		return text
	}
	if opts.JSON {
		// Folding may have made it JSON (a stray \v or \f gone): minify
		// now, so a second pass changes nothing.
		if m, ok := minifyJSON(out); ok {
			return m
		}
	}
	return out
}

// settled reports whether text has nothing the whitespace and fenced-JSON
// rules act on: no tab, carriage return or double space, no whitespace
// before a newline or at either end, no blank line and no fence.
func settled(text string) bool {
	if text == "" || isSpace(text[0]) || isSpace(text[len(text)-1]) {
		return false
	}
	for i := 1; i < len(text); i++ {
		c, prev := text[i], text[i-1]
		switch {
		case c == '\t' || c == '\r' || c == '\f' || c == '\v':
			return false
		case c == ' ' && prev == ' ':
			return false
		case c == '\n' && (prev == ' ' || prev == '\n'):
			return false
		case (c == '`' || c == '~') && prev == c:
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// replaceFences substitutes the changed fenced blocks into text (blocks
// come from splitBlocks(text)), leaving every other byte as it was.
func replaceFences(text string, blocks []block) string {
	var b strings.Builder
	prev := 0
	for _, bl := range blocks {
		if !bl.fence || bl.text == text[bl.start:bl.end] {
			continue
		}
		b.WriteString(text[prev:bl.start])
		b.WriteString(bl.text)
		prev = bl.end
	}
	if prev == 0 {
		return text
	}
	b.WriteString(text[prev:])
	return b.String()
}

// rebuilt is req with the new body and the texts of the kept messages:
// what llm.ParseRequest returns for body (the tests check it), without
// parsing it again.
func rebuilt(req *llm.Request, body []byte, msgs []message) *llm.Request {
	out := *req
	out.Body = body
	out.Texts = make([]llm.Text, 0, len(req.Texts))
	k := 0
	for i := range msgs {
		m := &msgs[i]
		if !m.keep {
			continue
		}
		base := "messages." + strconv.Itoa(k)
		for _, p := range m.texts {
			out.Texts = append(out.Texts, llm.Text{Role: m.role, Path: base + "." + p.path, Text: p.out})
		}
		k++
	}
	return &out
}

// render writes the kept messages, with their new texts, into the body.
func render(body []byte, msgs []message) ([]byte, error) {
	arr := make([]byte, 0, len(body))
	arr = append(arr, '[')
	first := true
	for i := range msgs {
		m := &msgs[i]
		if !m.keep {
			continue
		}
		raw := m.raw
		for _, p := range m.texts {
			if p.out == p.text {
				continue
			}
			s, err := sjson.Set(raw, p.path, p.out)
			if err != nil {
				return nil, fmt.Errorf("rewrite messages[%d].%s: %w", i, p.path, err)
			}
			raw = s
		}
		if !first {
			arr = append(arr, ',')
		}
		first = false
		arr = append(arr, raw...)
	}
	arr = append(arr, ']')
	out, err := sjson.SetRawBytes(body, "messages", arr)
	if err != nil {
		return nil, fmt.Errorf("rewrite messages: %w", err)
	}
	return out, nil
}

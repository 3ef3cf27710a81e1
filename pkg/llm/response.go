package llm

import (
	"strconv"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Usage is the token accounting of one response.
type Usage struct {
	InputTokens       int64 // prompt_tokens
	OutputTokens      int64 // completion_tokens (includes reasoning tokens)
	CachedInputTokens int64 // prompt_tokens_details.cached_tokens
	ReasoningTokens   int64 // completion_tokens_details.reasoning_tokens
}

// Response is what the gateway reads from a complete (non-streamed) response.
type Response struct {
	Model             string
	SystemFingerprint string
	Usage             Usage
	HasUsage          bool
	Texts             []Text // choices[i].message.content / choices[i].text
	FinishReasons     []string
	IsError           bool // the body is {"error": ...}
}

// ParseResponse reads a chat, completion, embedding or Responses API
// ("object": "response") response body. Invalid
// JSON, nesting deeper than MaxDepth and duplicate keys at any depth are
// reported as errors (ErrInvalidJSON, ErrTooDeep, ErrDuplicateKey): a body
// with two "usage" objects or two token counts is malformed, so its sender
// cannot choose which one is billed; the caller decides what a malformed body
// costs (Tollgate meters it from an estimate).
func ParseResponse(body []byte) (*Response, error) {
	if err := scanJSON(body); err != nil {
		return nil, err
	}
	// No copy: strings extracted below alias body, which the caller owns
	// and never mutates (rewrites build new slices).
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !root.IsObject() {
		return nil, ErrNotObject
	}
	r := &Response{}
	if e := root.Get("error"); e.Exists() && e.Type != gjson.Null {
		// A Responses API object carries "error": null when it succeeded.
		r.IsError = true
		return r, nil
	}
	r.Model = root.Get("model").Str
	r.SystemFingerprint = root.Get("system_fingerprint").Str
	if u := root.Get("usage"); u.IsObject() {
		r.Usage, r.HasUsage = usageFrom(u), true
	}
	if root.Get("object").Str == "response" {
		r.Texts = responsesTexts(r.Texts, root, "")
		return r, nil
	}
	i := 0
	root.Get("choices").ForEach(func(_, c gjson.Result) bool {
		idx := "choices." + strconv.Itoa(i)
		if t := c.Get("message.content"); t.Type == gjson.String {
			r.Texts = append(r.Texts, Text{Role: "assistant", Path: idx + ".message.content", Text: t.Str})
		} else if t := c.Get("text"); t.Type == gjson.String {
			r.Texts = append(r.Texts, Text{Role: "assistant", Path: idx + ".text", Text: t.Str})
		}
		r.FinishReasons = append(r.FinishReasons, c.Get("finish_reason").Str)
		i++
		return true
	})
	return r, nil
}

// usageFrom reads a usage object: chat's {prompt_tokens, completion_tokens,
// ...} or, without those, the Responses API's {input_tokens, output_tokens}.
func usageFrom(u gjson.Result) Usage {
	if !u.Get("prompt_tokens").Exists() && !u.Get("completion_tokens").Exists() &&
		(u.Get("input_tokens").Exists() || u.Get("output_tokens").Exists()) {
		return responsesUsage(u)
	}
	return Usage{
		InputTokens:       u.Get("prompt_tokens").Int(),
		OutputTokens:      u.Get("completion_tokens").Int(),
		CachedInputTokens: u.Get("prompt_tokens_details.cached_tokens").Int(),
		ReasoningTokens:   u.Get("completion_tokens_details.reasoning_tokens").Int(),
	}
}

// ParseUsage is ParseResponse without the choices: model, fingerprint,
// usage and whether the body is an error, reading only top-level keys. It
// is what metering needs when nothing inspects the completion text.
func ParseUsage(body []byte) (*Response, error) {
	if err := scanJSON(body); err != nil {
		return nil, err
	}
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !root.IsObject() {
		return nil, ErrNotObject
	}
	r := &Response{}
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "error":
			r.IsError = v.Type != gjson.Null // a Responses API object has "error": null
		case "model":
			r.Model = v.Str
		case "system_fingerprint":
			r.SystemFingerprint = v.Str
		case "usage":
			if v.IsObject() {
				r.Usage, r.HasUsage = usageFrom(v), true
			}
		}
		return true
	})
	if r.IsError {
		return &Response{IsError: true}, nil
	}
	return r, nil
}

package llm

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// The OpenAI Responses API (POST /v1/responses): its request fields, the
// usage object of its answers ({input_tokens, output_tokens, ...}) and the
// typed events of its stream ("response.output_text.delta",
// "response.completed", ...), which end without a [DONE] marker.

// responsesField reads the Responses API fields of a request body; it
// reports whether key was one of them.
func (r *Request) responsesField(key string, v gjson.Result) (bool, error) {
	switch key {
	case "max_output_tokens":
		if v.Type == gjson.Null {
			return true, nil
		}
		n, ok := intValue(v)
		if !ok || n < 1 || n > MaxOutputTokens {
			return true, &FieldError{key, "must be an integer from 1 to " + strconv.Itoa(MaxOutputTokens)}
		}
		r.MaxTokens = max(r.MaxTokens, n)
	case "instructions":
		switch v.Type {
		case gjson.String:
			r.Texts = append(r.Texts, Text{Role: "system", Path: "instructions", Text: v.Str})
		case gjson.Null:
		default:
			return true, &FieldError{"instructions", "must be a string"}
		}
	case "input":
		return true, r.responsesInput(v)
	case "prompt":
		// A stored prompt template, not completion text: passed on as is.
	case "max_tokens", "max_completion_tokens", "n", "messages", "stream_options":
		// Chat fields the Responses API does not define: not read, so
		// that they change neither the reservation nor the body.
	default:
		return false, nil
	}
	return true, nil
}

// responsesInput reads "input": a string, or an array of items. A message
// item's "content" is a string or an array of parts whose "text" is read
// (input_text, output_text), and a function_call_output's "output" string
// is read; other items and parts (images, files, audio, the model's earlier
// tool calls and reasoning) are passed on unread and make the request
// Opaque.
func (r *Request) responsesInput(v gjson.Result) error {
	switch {
	case v.Type == gjson.String:
		r.Texts = append(r.Texts, Text{Role: "user", Path: "input", Text: v.Str})
		return nil
	case !v.IsArray():
		return &FieldError{"input", "must be a string or an array of input items"}
	}
	var err error
	i := 0
	v.ForEach(func(_, item gjson.Result) bool {
		base := "input." + strconv.Itoa(i)
		if !item.IsObject() {
			err = &FieldError{"input[" + strconv.Itoa(i) + "]", "must be an object"}
			return false
		}
		i++
		// One pass over the item's keys (duplicates were refused).
		var c, out gjson.Result
		var typ, role string
		item.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "content":
				c = v
			case "output":
				out = v
			case "type":
				typ = v.Str
			case "role":
				role = v.Str
			}
			return true
		})
		if typ == "function_call_output" && out.Type == gjson.String {
			r.Texts = append(r.Texts, Text{Role: "tool", Path: base + ".output", Text: out.Str})
			return true
		}
		if (typ != "" && typ != "message") || !c.Exists() {
			r.Opaque = true
			return true
		}
		switch {
		case c.Type == gjson.String:
			r.Texts = append(r.Texts, Text{Role: role, Path: base + ".content", Text: c.Str})
		case c.IsArray():
			j := 0
			c.ForEach(func(_, part gjson.Result) bool {
				if t := part.Get("text"); t.Type == gjson.String {
					r.Texts = append(r.Texts, Text{Role: role, Path: base + ".content." + strconv.Itoa(j) + ".text", Text: t.Str})
				} else {
					r.Opaque = true
				}
				j++
				return true
			})
		default:
			err = &FieldError{base + ".content", "must be a string or an array of content parts"}
			return false
		}
		return true
	})
	return err
}

// responsesUsage reads a Responses API usage object.
func responsesUsage(u gjson.Result) Usage {
	return Usage{
		InputTokens:       u.Get("input_tokens").Int(),
		OutputTokens:      u.Get("output_tokens").Int(),
		CachedInputTokens: u.Get("input_tokens_details.cached_tokens").Int(),
		ReasoningTokens:   u.Get("output_tokens_details.reasoning_tokens").Int(),
	}
}

// responsesTexts appends the output_text parts of a response object's
// "output" array, with their paths under prefix ("" or "response.").
func responsesTexts(dst []Text, resp gjson.Result, prefix string) []Text {
	i := 0
	resp.Get("output").ForEach(func(_, item gjson.Result) bool {
		j := 0
		item.Get("content").ForEach(func(_, part gjson.Result) bool {
			if t := part.Get("text"); t.Type == gjson.String {
				dst = append(dst, Text{Role: "assistant", Path: prefix + "output." + strconv.Itoa(i) + ".content." + strconv.Itoa(j) + ".text", Text: t.Str})
			}
			j++
			return true
		})
		i++
		return true
	})
	return dst
}

// ResponsesEvent is what the gateway reads from one event of a Responses
// API stream.
type ResponsesEvent struct {
	Type     string
	Model    string // from an event carrying the response object
	Usage    Usage
	HasUsage bool
	Final    bool // response.completed, .incomplete or .failed: the stream's last event
	IsError  bool // an "error" event or response.failed
	// Delta is the text a response.output_text.delta adds (DeltaPath its
	// sjson path, "delta"), for output OutputIndex.
	Delta       string
	DeltaPath   string
	OutputIndex int64
	// Texts are the full-text copies some events repeat (output_text.done,
	// content_part.done, output_item.done and the final response object),
	// with their paths, so that a guard can rewrite them like the deltas.
	Texts []Text
}

// ParseResponsesEvent reads one event's data from a Responses API stream.
// Like ParseChunk it rejects invalid JSON, nesting deeper than MaxDepth and
// duplicate keys.
func ParseResponsesEvent(data []byte) (ResponsesEvent, error) {
	if err := scanJSON(data); err != nil {
		return ResponsesEvent{}, err
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return ResponsesEvent{}, ErrNotObject
	}
	e := ResponsesEvent{Type: root.Get("type").Str, OutputIndex: root.Get("output_index").Int()}
	switch e.Type {
	case "error":
		e.IsError = true
	case "response.output_text.delta":
		if t := root.Get("delta"); t.Type == gjson.String {
			e.Delta, e.DeltaPath = t.Str, "delta"
		}
	case "response.output_text.done":
		if t := root.Get("text"); t.Type == gjson.String {
			e.Texts = append(e.Texts, Text{Role: "assistant", Path: "text", Text: t.Str})
		}
	case "response.content_part.done", "response.content_part.added":
		if t := root.Get("part.text"); t.Type == gjson.String {
			e.Texts = append(e.Texts, Text{Role: "assistant", Path: "part.text", Text: t.Str})
		}
	case "response.output_item.done", "response.output_item.added":
		j := 0
		root.Get("item.content").ForEach(func(_, part gjson.Result) bool {
			if t := part.Get("text"); t.Type == gjson.String {
				e.Texts = append(e.Texts, Text{Role: "assistant", Path: "item.content." + strconv.Itoa(j) + ".text", Text: t.Str})
			}
			j++
			return true
		})
	}
	if strings.HasPrefix(e.Type, "response.") {
		if resp := root.Get("response"); resp.IsObject() {
			e.Model = resp.Get("model").Str
			if u := resp.Get("usage"); u.IsObject() {
				e.Usage, e.HasUsage = responsesUsage(u), true
			}
			e.Texts = responsesTexts(e.Texts, resp, "response.")
		}
		switch e.Type {
		case "response.completed", "response.incomplete":
			e.Final = true
		case "response.failed":
			e.Final, e.IsError = true, true
		}
	}
	return e, nil
}

// ResponsesDelta renders a response.output_text.delta event's data carrying
// text for output index (text a streaming guard held back and now releases).
func ResponsesDelta(index int64, text string) []byte {
	b, _ := json.Marshal(struct { // strings and integers: cannot fail
		Type         string `json:"type"`
		OutputIndex  int64  `json:"output_index"`
		ContentIndex int64  `json:"content_index"`
		Delta        string `json:"delta"`
	}{"response.output_text.delta", index, 0, text})
	return b
}

package llm

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Operation is the kind of API call, chosen by path.
type Operation uint8

// Operations Tollgate understands; anything else passes through.
const (
	OpUnknown Operation = iota
	OpChat
	OpCompletion
	OpEmbedding
	OpResponses // the Responses API (responses.go)
)

// String is the gen_ai.operation.name of the operation ("responses" for
// the Responses API, which the OpenTelemetry conventions do not name, so
// that dashboards can tell it from chat).
func (o Operation) String() string {
	switch o {
	case OpChat:
		return "chat"
	case OpCompletion:
		return "text_completion"
	case OpEmbedding:
		return "embeddings"
	case OpResponses:
		return "responses"
	}
	return "other"
}

// OperationForPath maps a request path (query string ignored) to its operation.
func OperationForPath(path string) Operation {
	for i := 0; i < len(path); i++ {
		if path[i] == '?' {
			path = path[:i]
			break
		}
	}
	switch path {
	case "/v1/chat/completions":
		return OpChat
	case "/v1/completions":
		return OpCompletion
	case "/v1/embeddings":
		return OpEmbedding
	case "/v1/responses":
		return OpResponses
	}
	return OpUnknown
}

// Errors returned by ParseRequest; all of them mean HTTP 400.
var (
	ErrEmptyBody   = errors.New("request body is empty")
	ErrInvalidJSON = errors.New("request body is not valid JSON")
	ErrInvalidUTF8 = errors.New("request body is not valid UTF-8")
	ErrNotObject   = errors.New("request body must be a JSON object")
	ErrNoModel     = errors.New("missing required parameter: 'model'")
)

// FieldError says which request field is wrong.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("invalid '%s': %s", e.Field, e.Msg) }

// Text is one piece of request text the gateway inspects, with the JSON path
// that holds it so it can be rewritten (e.g. redacted) in place.
type Text struct {
	Role string // message role for chat; "prompt" / "input" otherwise
	Path string // sjson path, e.g. "messages.2.content" or "messages.2.content.0.text"
	Text string
}

// Request is what the gateway reads from a request body.
type Request struct {
	Op           Operation
	Model        string
	Stream       bool
	IncludeUsage bool  // stream_options.include_usage
	MaxTokens    int64 // the larger of max_completion_tokens and max_tokens; 0 if absent
	N            int64 // 1 if absent
	Temperature  float64
	HasTemp      bool
	Texts        []Text // message contents, prompt or input strings, in order
	ToolsJSON    string // raw "tools" (and legacy "functions") for cache partitioning
	// Opaque: the request holds input Tollgate does not read (Responses
	// API items and parts other than text: images, files, audio, earlier
	// tool calls): Texts are not the whole prompt, and the guardrails
	// cannot screen the rest.
	Opaque bool

	Body []byte // the raw body; Set* methods rewrite it
}

// Limits on the numeric fields that drive budget reservations.
const (
	// MaxN is the largest accepted "n" (choices per request), as OpenAI.
	MaxN = 128
	// MaxOutputTokens bounds max_tokens and max_completion_tokens.
	MaxOutputTokens = 1 << 31
)

// ParseRequest validates body as an OpenAI request of op and extracts the
// fields the gateway needs. The body must be one JSON object, nested at most
// MaxDepth deep, with no duplicate key at any depth (ErrDuplicateKey); n must
// be 1..MaxN and max_tokens / max_completion_tokens 1..MaxOutputTokens.
func ParseRequest(op Operation, body []byte) (*Request, error) {
	if len(body) == 0 {
		return nil, ErrEmptyBody
	}
	if !utf8.Valid(body) {
		return nil, ErrInvalidUTF8
	}
	// One linear pass bounds the depth and rejects duplicate keys before
	// gjson (whose validator recurses) sees the body: the provider must read
	// exactly the fields Tollgate checked, whichever duplicate it would keep.
	if err := scanJSON(body); err != nil {
		return nil, err
	}
	// No copy: strings extracted below alias body, which the caller owns
	// and never mutates (rewrites build new slices).
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !root.IsObject() {
		return nil, ErrNotObject
	}
	r := &Request{Op: op, Body: body, N: 1}
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		err = r.field(k.Str, v)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if r.Model == "" {
		return nil, ErrNoModel
	}
	return r, nil
}

func (r *Request) field(key string, v gjson.Result) error {
	if r.Op == OpResponses {
		if done, err := r.responsesField(key, v); done {
			return err
		}
	}
	switch key {
	case "model":
		if v.Type != gjson.String {
			return &FieldError{"model", "must be a string"}
		}
		r.Model = v.Str
	case "stream":
		if v.Type != gjson.True && v.Type != gjson.False && v.Type != gjson.Null {
			return &FieldError{"stream", "must be a boolean"}
		}
		r.Stream = v.Type == gjson.True
	case "stream_options":
		r.IncludeUsage = v.Get("include_usage").Type == gjson.True
	case "max_tokens", "max_completion_tokens":
		if v.Type == gjson.Null {
			return nil
		}
		n, ok := intValue(v)
		if !ok || n < 1 || n > MaxOutputTokens {
			return &FieldError{key, "must be an integer from 1 to " + strconv.Itoa(MaxOutputTokens)}
		}
		// Both may be present and providers differ on which one wins:
		// budget for the larger.
		r.MaxTokens = max(r.MaxTokens, n)
	case "n":
		if v.Type == gjson.Null {
			return nil
		}
		n, ok := intValue(v)
		if !ok || n < 1 || n > MaxN {
			return &FieldError{"n", "must be an integer from 1 to " + strconv.Itoa(MaxN)}
		}
		r.N = n
	case "temperature":
		if v.Type == gjson.Null {
			return nil
		}
		if v.Type != gjson.Number {
			return &FieldError{"temperature", "must be a number"}
		}
		r.Temperature, r.HasTemp = v.Num, true
	case "tools", "functions":
		r.ToolsJSON += v.Raw
	case "messages":
		if r.Op != OpChat {
			return nil
		}
		return r.messages(v)
	case "prompt":
		if r.Op == OpCompletion {
			return r.strings("prompt", v)
		}
	case "input":
		if r.Op == OpEmbedding {
			return r.strings("input", v)
		}
	}
	return nil
}

func intValue(v gjson.Result) (int64, bool) {
	if v.Type != gjson.Number {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func (r *Request) messages(v gjson.Result) error {
	if !v.IsArray() {
		return &FieldError{"messages", "must be an array"}
	}
	var err error
	i := 0
	v.ForEach(func(_, m gjson.Result) bool {
		if !m.IsObject() {
			err = &FieldError{"messages[" + strconv.Itoa(i) + "]", "must be an object"}
			return false
		}
		role := m.Get("role").Str
		base := "messages." + strconv.Itoa(i) + ".content"
		c := m.Get("content")
		switch {
		case c.Type == gjson.String:
			r.Texts = append(r.Texts, Text{Role: role, Path: base, Text: c.Str})
		case c.IsArray():
			j := 0
			c.ForEach(func(_, part gjson.Result) bool {
				if t := part.Get("text"); t.Type == gjson.String {
					r.Texts = append(r.Texts, Text{Role: role, Path: base + "." + strconv.Itoa(j) + ".text", Text: t.Str})
				}
				j++
				return true
			})
		case c.Type == gjson.Null || !c.Exists():
		default:
			err = &FieldError{base, "must be a string or an array of content parts"}
			return false
		}
		i++
		return true
	})
	if err == nil && i == 0 {
		return &FieldError{"messages", "must not be empty"}
	}
	return err
}

func (r *Request) strings(field string, v gjson.Result) error {
	switch {
	case v.Type == gjson.String:
		r.Texts = append(r.Texts, Text{Role: field, Path: field, Text: v.Str})
	case v.IsArray():
		i := 0
		v.ForEach(func(_, s gjson.Result) bool {
			if s.Type == gjson.String {
				r.Texts = append(r.Texts, Text{Role: field, Path: field + "." + strconv.Itoa(i), Text: s.Str})
			}
			i++
			return true
		})
	default:
		return &FieldError{field, "must be a string or an array"}
	}
	return nil
}

// PromptText concatenates every text of the request (for token estimates).
func (r *Request) PromptText() string {
	n := 0
	for _, t := range r.Texts {
		n += len(t.Text) + 1
	}
	b := make([]byte, 0, n)
	for _, t := range r.Texts {
		b = append(b, t.Text...)
		b = append(b, '\n')
	}
	return string(b)
}

// Set rewrites one JSON path of the body (sjson syntax) to value.
func (r *Request) Set(path string, value any) error {
	b, err := sjson.SetBytes(r.Body, path, value)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	r.Body = b
	return nil
}

// SetText replaces the text at t.Path (for redaction) and records it.
func (r *Request) SetText(i int, text string) error {
	if err := r.Set(r.Texts[i].Path, text); err != nil {
		return err
	}
	r.Texts[i].Text = text
	return nil
}

// EnsureUsageInStream asks the provider for the final usage chunk. It reports
// whether the client had not asked for it (so the gateway must strip it).
func (r *Request) EnsureUsageInStream() (added bool, err error) {
	if !r.Stream || r.IncludeUsage || r.Op == OpResponses {
		// A Responses stream always ends with its usage (response.completed).
		return false, nil
	}
	if err := r.Set("stream_options.include_usage", true); err != nil {
		return false, err
	}
	return true, nil
}

// CapMaxTokens lowers max_tokens and max_completion_tokens (max_output_tokens
// for the Responses API) to limit: each one present above it is rewritten,
// and max_tokens (max_output_tokens) is added when none is present. A
// provider then cannot exceed limit whichever field it obeys.
func (r *Request) CapMaxTokens(limit int64) error {
	if limit <= 0 || (r.MaxTokens > 0 && r.MaxTokens <= limit) {
		return nil
	}
	fields, add := []string{"max_tokens", "max_completion_tokens"}, "max_tokens"
	if r.Op == OpResponses {
		fields, add = []string{"max_output_tokens"}, "max_output_tokens"
	}
	capped := false
	for _, field := range fields {
		v := gjson.GetBytes(r.Body, field)
		if v.Type == gjson.Null || !v.Exists() {
			continue
		}
		capped = true
		if n, ok := intValue(v); ok && n <= limit {
			continue
		}
		if err := r.Set(field, limit); err != nil {
			return err
		}
	}
	if !capped {
		if err := r.Set(add, limit); err != nil {
			return err
		}
	}
	r.MaxTokens = limit
	return nil
}

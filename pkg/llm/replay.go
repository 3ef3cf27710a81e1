package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrIncompleteCompletion is returned by ReplaySSE and ValidateCompletion
// for a body that is not a complete chat.completion: not JSON, an error
// object, another object, no choices, or a choice without finish_reason (a
// cut stream).
var ErrIncompleteCompletion = errors.New("not a complete chat.completion")

// completion is the part of a chat.completion that replay and validation
// read. Unknown fields are ignored.
type completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint *string            `json:"system_fingerprint,omitempty"`
	ServiceTier       *string            `json:"service_tier,omitempty"`
	Choices           []completionChoice `json:"choices"`
	Usage             json.RawMessage    `json:"usage,omitempty"`
	Error             json.RawMessage    `json:"error,omitempty"`
}

type completionChoice struct {
	Index        int             `json:"index"`
	Message      message         `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

type message struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	Refusal   *string    `json:"refusal"`
	ToolCalls []toolCall `json:"tool_calls"`
}

type toolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint *string         `json:"system_fingerprint,omitempty"`
	ServiceTier       *string         `json:"service_tier,omitempty"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	Refusal   *string         `json:"refusal,omitempty"`
	ToolCalls []toolCallDelta `json:"tool_calls,omitempty"`
}

type toolCallDelta struct {
	Index    int           `json:"index"`
	ID       string        `json:"id,omitempty"`
	Type     string        `json:"type,omitempty"`
	Function functionDelta `json:"function"`
}

type functionDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

func parseCompletion(body []byte) (*completion, error) {
	if err := scanJSON(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIncompleteCompletion, err)
	}
	var c completion
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIncompleteCompletion, err)
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		return nil, fmt.Errorf("%w: error object", ErrIncompleteCompletion)
	}
	if c.Object != "chat.completion" {
		return nil, fmt.Errorf("%w: object is %q", ErrIncompleteCompletion, c.Object)
	}
	if len(c.Choices) == 0 {
		return nil, fmt.Errorf("%w: no choices", ErrIncompleteCompletion)
	}
	for i, ch := range c.Choices {
		if ch.FinishReason == "" {
			return nil, fmt.Errorf("%w: choice %d has no finish_reason (cut stream?)", ErrIncompleteCompletion, i)
		}
	}
	return &c, nil
}

// ValidateCompletion reports whether body is a complete chat.completion
// (ErrIncompleteCompletion otherwise): what a cache may store and replay.
func ValidateCompletion(body []byte) error {
	_, err := parseCompletion(body)
	return err
}

// replayPiece is the largest content delta, in bytes, of a replayed stream.
const replayPiece = 48

// ReplaySSE turns a stored chat.completion into the text/event-stream body
// a streaming client expects: per choice a role chunk, content (or refusal)
// chunks, tool-call chunks and a finish chunk; then, when includeUsage, a
// usage chunk with no choices; then "data: [DONE]".
func ReplaySSE(completionJSON []byte, includeUsage bool) ([]byte, error) {
	c, err := parseCompletion(completionJSON)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(completionJSON)*2 + 512)
	base := chunk{
		ID: c.ID, Object: "chat.completion.chunk", Created: c.Created, Model: c.Model,
		SystemFingerprint: c.SystemFingerprint, ServiceTier: c.ServiceTier,
	}
	emit := func(ch chunk) error {
		b, err := json.Marshal(ch)
		if err != nil {
			return fmt.Errorf("encode chunk: %w", err)
		}
		out.WriteString("data: ")
		out.Write(b)
		out.WriteString("\n\n")
		return nil
	}
	one := func(cc chunkChoice) chunk {
		ch := base
		ch.Choices = []chunkChoice{cc}
		return ch
	}
	empty := ""
	for _, choice := range c.Choices {
		role := choice.Message.Role
		if role == "" {
			role = "assistant"
		}
		first := delta{Role: role, Content: &empty}
		if choice.Message.Content == nil {
			first.Content = nil
		}
		if err := emit(one(chunkChoice{Index: choice.Index, Delta: first})); err != nil {
			return nil, err
		}
		if s := choice.Message.Content; s != nil {
			for _, piece := range splitText(*s, replayPiece) {
				if err := emit(one(chunkChoice{Index: choice.Index, Delta: delta{Content: &piece}})); err != nil {
					return nil, err
				}
			}
		}
		if s := choice.Message.Refusal; s != nil && *s != "" {
			for _, piece := range splitText(*s, replayPiece) {
				if err := emit(one(chunkChoice{Index: choice.Index, Delta: delta{Refusal: &piece}})); err != nil {
					return nil, err
				}
			}
		}
		for i, tc := range choice.Message.ToolCalls {
			d := delta{ToolCalls: []toolCallDelta{{
				Index: i, ID: tc.ID, Type: tc.Type,
				Function: functionDelta{Name: tc.Function.Name, Arguments: tc.Function.Arguments},
			}}}
			if err := emit(one(chunkChoice{Index: choice.Index, Delta: d})); err != nil {
				return nil, err
			}
		}
		fr := choice.FinishReason
		if err := emit(one(chunkChoice{Index: choice.Index, Delta: delta{}, FinishReason: &fr})); err != nil {
			return nil, err
		}
	}
	if includeUsage && len(c.Usage) > 0 && string(c.Usage) != "null" {
		u := base
		u.Choices = []chunkChoice{}
		u.Usage = c.Usage
		if err := emit(u); err != nil {
			return nil, err
		}
	}
	out.WriteString("data: [DONE]\n\n")
	return out.Bytes(), nil
}

// splitText cuts s into pieces of at most n bytes on rune boundaries,
// preferring to cut after a space.
func splitText(s string, n int) []string {
	var out []string
	for len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		if sp := lastSpace(s[:cut]); sp > n/2 {
			cut = sp + 1
		}
		if cut == 0 { // a single rune longer than n cannot happen (n >= 4)
			cut = n
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

func lastSpace(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ' ' || s[i] == '\n' {
			return i
		}
	}
	return -1
}

package llm

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
)

// StreamAccumulator rebuilds a chat.completion from the chunks of a stream,
// so a streamed answer can be stored and replayed like a JSON one.
type StreamAccumulator struct {
	id, model, fingerprint string
	created                int64
	choices                map[int64]*accChoice
	usage                  Usage
	hasUsage               bool
}

type accChoice struct {
	text   strings.Builder
	finish string
}

// Add records one chunk's data (a chat.completion.chunk JSON) and c, the
// result of ParseChunk(data), which has already bounded its depth.
func (a *StreamAccumulator) Add(data []byte, c Chunk) {
	if a.choices == nil {
		a.choices = map[int64]*accChoice{}
	}
	if a.id == "" {
		root := gjson.ParseBytes(data)
		a.id = root.Get("id").Str
		a.created = root.Get("created").Int()
	}
	if c.Model != "" {
		a.model = c.Model
	}
	if c.SystemFingerprint != "" {
		a.fingerprint = c.SystemFingerprint
	}
	if c.HasUsage {
		a.usage, a.hasUsage = c.Usage, true
	}
	for _, d := range c.Deltas {
		ch := a.choices[d.Index]
		if ch == nil {
			ch = &accChoice{}
			a.choices[d.Index] = ch
		}
		ch.text.WriteString(d.Text)
		if d.FinishReason != "" {
			ch.finish = d.FinishReason
		}
	}
}

// Complete reports whether every choice finished and usage arrived.
func (a *StreamAccumulator) Complete() bool {
	if !a.hasUsage || len(a.choices) == 0 {
		return false
	}
	for _, c := range a.choices {
		if c.finish == "" {
			return false
		}
	}
	return true
}

// Text is the accumulated content of all choices.
func (a *StreamAccumulator) Text() string {
	var b strings.Builder
	for _, i := range a.indexes() {
		b.WriteString(a.choices[i].text.String())
	}
	return b.String()
}

func (a *StreamAccumulator) indexes() []int64 {
	idx := make([]int64, 0, len(a.choices))
	for i := range a.choices {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	return idx
}

// Completion renders the stream as a chat.completion JSON object.
func (a *StreamAccumulator) Completion() ([]byte, error) {
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	type choice struct {
		Index        int64   `json:"index"`
		Message      message `json:"message"`
		FinishReason string  `json:"finish_reason"`
	}
	type usage struct {
		PromptTokens        int64 `json:"prompt_tokens"`
		CompletionTokens    int64 `json:"completion_tokens"`
		TotalTokens         int64 `json:"total_tokens"`
		PromptTokensDetails struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails struct {
			ReasoningTokens int64 `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
	}
	out := struct {
		ID                string   `json:"id"`
		Object            string   `json:"object"`
		Created           int64    `json:"created"`
		Model             string   `json:"model"`
		Choices           []choice `json:"choices"`
		Usage             usage    `json:"usage"`
		SystemFingerprint string   `json:"system_fingerprint,omitempty"`
	}{ID: a.id, Object: "chat.completion", Created: a.created, Model: a.model, SystemFingerprint: a.fingerprint}
	for _, i := range a.indexes() {
		c := a.choices[i]
		out.Choices = append(out.Choices, choice{Index: i, Message: message{Role: "assistant", Content: c.text.String()}, FinishReason: c.finish})
	}
	out.Usage.PromptTokens = a.usage.InputTokens
	out.Usage.CompletionTokens = a.usage.OutputTokens
	out.Usage.TotalTokens = a.usage.InputTokens + a.usage.OutputTokens
	out.Usage.PromptTokensDetails.CachedTokens = a.usage.CachedInputTokens
	out.Usage.CompletionTokensDetails.ReasoningTokens = a.usage.ReasoningTokens
	return json.Marshal(out)
}

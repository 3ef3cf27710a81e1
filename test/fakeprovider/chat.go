package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// TokensPerMessage is added to the prompt tokens for every chat message.
const TokensPerMessage = 3

// Words is the number of whitespace-separated words in s: the provider's
// token count for any text.
func Words(s string) int64 { return countWords(s) }

// ChatPromptTokens is the prompt_tokens the provider reports for chat
// messages with these text contents: Words of each plus TokensPerMessage
// per message.
func ChatPromptTokens(contents ...string) int64 {
	var n int64
	for _, c := range contents {
		n += countWords(c) + TokensPerMessage
	}
	return n
}

// messageText is the text of a message's content: the string itself, or
// the text parts of a content array joined by newlines.
func messageText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("content is neither a string nor an array of parts: %w", err)
	}
	texts := make([]string, 0, len(parts))
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n"), nil
}

func (p *Provider) chatCompletions(w http.ResponseWriter, r *http.Request, body []byte, b behaviour) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", "invalid_request_error", "", "")
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "you must provide a model parameter", "invalid_request_error", "", "")
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "[] is too short - 'messages'", "invalid_request_error", "messages", "empty_array")
		return
	}
	var prompt int64
	lastUser := ""
	for i, m := range req.Messages {
		text, err := messageText(m.Content)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid value for 'messages[%d].content': %v", i, err), "invalid_request_error", fmt.Sprintf("messages.[%d].content", i), "")
			return
		}
		prompt += countWords(text) + TokensPerMessage
		if m.Role == "user" {
			lastUser = text
		}
	}
	limit := int64(0)
	if req.MaxTokens != nil {
		limit = *req.MaxTokens
	}
	if req.MaxCompletionTokens != nil {
		limit = *req.MaxCompletionTokens
	}
	reply, cut := truncateWords(b.replyText(lastUser), limit)
	finish := "stop"
	if cut {
		finish = "length"
	}
	usage := buildUsage(prompt, countWords(reply), b.usage)
	id := fmt.Sprintf("chatcmpl-fake%06d", p.nextID())
	model := p.responseModel(&b, req.Model)
	created := p.opts.Now().Unix()
	setResponseHeaders(w, id)

	if req.Stream {
		includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		p.streamChat(w, r, b, chatCompletionChunk{
			ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
			ServiceTier: "default", SystemFingerprint: p.opts.SystemFingerprint,
		}, reply, finish, includeUsage, usage)
		return
	}
	p.writeJSON(w, http.StatusOK, chatCompletion{
		ID: id, Object: "chat.completion", Created: created, Model: model,
		Choices: []chatChoice{{
			Index:        0,
			Message:      chatMessage{Role: "assistant", Content: reply, Annotations: []json.RawMessage{}},
			Logprobs:     jsonNull(),
			FinishReason: finish,
		}},
		Usage:             usage,
		ServiceTier:       "default",
		SystemFingerprint: p.opts.SystemFingerprint,
	}, b.fault)
}

func (p *Provider) streamChat(w http.ResponseWriter, r *http.Request, b behaviour, base chatCompletionChunk, reply, finish string, includeUsage bool, usage completionUsage) {
	s := p.newSSE(w, r, b)
	if includeUsage {
		base.Usage = jsonNull()
	}
	chunk := func(delta string, fin *string) chatCompletionChunk {
		c := base
		c.Choices = []chatChunkChoice{{Index: 0, Delta: json.RawMessage(delta), Logprobs: jsonNull(), FinishReason: fin}}
		return c
	}
	if !s.send(chunk(`{"role":"assistant","content":"","refusal":null}`, nil)) {
		return
	}
	if b.fault.Malformed && !s.sendRaw([]byte(`{"id":"`+base.ID+`","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"trunc`)) {
		return
	}
	for _, piece := range splitChunks(reply, b.chunks) {
		delta, _ := json.Marshal(chatDelta{Content: &piece}) // a string: cannot fail
		if !s.send(chunk(string(delta), nil)) {
			return
		}
	}
	if !s.send(chunk(`{}`, &finish)) {
		return
	}
	if includeUsage {
		u, _ := json.Marshal(usage) // numbers only: cannot fail
		last := base
		last.Choices = []chatChunkChoice{}
		last.Usage = u
		if !s.send(last) {
			return
		}
	}
	s.done()
}

func setResponseHeaders(w http.ResponseWriter, id string) {
	w.Header().Set("x-request-id", "req_"+id)
	w.Header().Set("openai-processing-ms", "1")
	w.Header().Set("openai-version", "2020-10-01")
}

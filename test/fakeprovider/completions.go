package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// promptTexts reads a completions "prompt" or embeddings "input": a string,
// an array of strings, an array of token ids or an array of token-id
// arrays. Token ids are rendered as words "t<id>" so that each counts as one
// token and gets a stable embedding.
func promptTexts(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []string{s}, nil
	}
	var ss []string
	if err := json.Unmarshal(raw, &ss); err == nil {
		return ss, nil
	}
	var toks []int64
	if err := json.Unmarshal(raw, &toks); err == nil {
		return []string{tokensText(toks)}, nil
	}
	var tokss [][]int64
	if err := json.Unmarshal(raw, &tokss); err != nil {
		return nil, fmt.Errorf("want a string, an array of strings or token arrays: %w", err)
	}
	out := make([]string, len(tokss))
	for i, t := range tokss {
		out[i] = tokensText(t)
	}
	return out, nil
}

func tokensText(toks []int64) string {
	var sb strings.Builder
	for i, t := range toks {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "t%d", t)
	}
	return sb.String()
}

func (p *Provider) completions(w http.ResponseWriter, r *http.Request, body []byte, b behaviour) {
	var req completionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "", "")
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "you must provide a model parameter", "invalid_request_error", "", "")
		return
	}
	prompts, err := promptTexts(req.Prompt)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid value for 'prompt': "+err.Error(), "invalid_request_error", "prompt", "")
		return
	}
	var promptTokens int64
	last := ""
	for _, s := range prompts {
		promptTokens += countWords(s)
		last = s
	}
	limit := int64(0)
	if req.MaxTokens != nil {
		limit = *req.MaxTokens
	}
	reply, cut := truncateWords(b.replyText(last), limit)
	finish := "stop"
	if cut {
		finish = "length"
	}
	usage := buildUsage(promptTokens, countWords(reply), b.usage)
	id := fmt.Sprintf("cmpl-fake%06d", p.nextID())
	base := textCompletion{
		ID: id, Object: "text_completion", Created: p.opts.Now().Unix(),
		Model: p.responseModel(&b, req.Model), SystemFingerprint: p.opts.SystemFingerprint,
	}
	setResponseHeaders(w, id)
	if !req.Stream {
		u, _ := json.Marshal(usage) // numbers only: cannot fail
		base.Choices = []textChoice{{Text: reply, Index: 0, Logprobs: jsonNull(), FinishReason: &finish}}
		base.Usage = u
		p.writeJSON(w, http.StatusOK, base, b.fault)
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	if includeUsage {
		base.Usage = jsonNull()
	}
	s := p.newSSE(w, r, b)
	chunk := func(text string, fin *string) textCompletion {
		c := base
		c.Choices = []textChoice{{Text: text, Index: 0, Logprobs: jsonNull(), FinishReason: fin}}
		return c
	}
	for i, piece := range splitChunks(reply, b.chunks) {
		if !s.send(chunk(piece, nil)) {
			return
		}
		if i == 0 && b.fault.Malformed && !s.sendRaw([]byte(`{"id":"`+id+`","object":"text_completion","choices":[{"text":"trunc`)) {
			return
		}
	}
	if !s.send(chunk("", &finish)) {
		return
	}
	if includeUsage {
		last := base
		last.Choices = []textChoice{}
		last.Usage, _ = json.Marshal(usage) // numbers only: cannot fail
		if !s.send(last) {
			return
		}
	}
	s.done()
}

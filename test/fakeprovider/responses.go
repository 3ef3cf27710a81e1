package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The Responses API (POST /v1/responses): the answer is one "message"
// output item with one "output_text" part; a stream is response.created,
// response.output_item.added, response.content_part.added, the
// response.output_text.delta events, response.output_text.done,
// response.content_part.done, response.output_item.done and
// response.completed (which carries the usage), each with an "event:" line
// naming its type, and no [DONE].

type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    *string         `json:"instructions"`
	MaxOutputTokens *int64          `json:"max_output_tokens"`
	Stream          bool            `json:"stream"`
}

type responsesInputItem struct {
	Type    string          `json:"type"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type responsesUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

type responsesPart struct {
	Type        string            `json:"type"`
	Text        string            `json:"text"`
	Annotations []json.RawMessage `json:"annotations"`
}

type responsesItem struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Status  string          `json:"status"`
	Role    string          `json:"role"`
	Content []responsesPart `json:"content"`
}

type responseObject struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	CreatedAt         int64           `json:"created_at"`
	Status            string          `json:"status"`
	Error             json.RawMessage `json:"error"`
	IncompleteDetails json.RawMessage `json:"incomplete_details"`
	Instructions      *string         `json:"instructions"`
	MaxOutputTokens   *int64          `json:"max_output_tokens"`
	Model             string          `json:"model"`
	Output            []responsesItem `json:"output"`
	Usage             json.RawMessage `json:"usage"`
}

// ResponsesInputTokens is the input_tokens the provider reports for a
// Responses request with these texts (instructions and the text of every
// input message): Words of each plus TokensPerMessage per text.
func ResponsesInputTokens(texts ...string) int64 { return ChatPromptTokens(texts...) }

// responsesInputTexts returns the texts of "input" (a string, or message
// items whose content is a string or input_text / output_text parts) and
// the last user text.
func responsesInputTexts(raw json.RawMessage) (texts []string, lastUser string, err error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []string{s}, s, nil
	}
	var items []responsesInputItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, "", fmt.Errorf("input is neither a string nor an array of items: %w", err)
	}
	for _, it := range items {
		if it.Type != "" && it.Type != "message" {
			continue
		}
		var text string
		if err := json.Unmarshal(it.Content, &text); err != nil {
			var parts []contentPart
			if err := json.Unmarshal(it.Content, &parts); err != nil {
				return nil, "", fmt.Errorf("content is neither a string nor an array of parts: %w", err)
			}
			ts := make([]string, 0, len(parts))
			for _, p := range parts {
				if p.Type == "input_text" || p.Type == "output_text" {
					ts = append(ts, p.Text)
				}
			}
			text = strings.Join(ts, "\n")
		}
		texts = append(texts, text)
		if it.Role == "user" {
			lastUser = text
		}
	}
	return texts, lastUser, nil
}

func (p *Provider) responses(w http.ResponseWriter, r *http.Request, body []byte, b behaviour) {
	var req responsesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "", "")
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "Missing required parameter: 'model'.", "invalid_request_error", "model", "missing_required_parameter")
		return
	}
	if len(req.Input) == 0 {
		writeError(w, http.StatusBadRequest, "Missing required parameter: 'input'.", "invalid_request_error", "input", "missing_required_parameter")
		return
	}
	texts, lastUser, err := responsesInputTexts(req.Input)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid value for 'input': "+err.Error(), "invalid_request_error", "input", "")
		return
	}
	if req.Instructions != nil {
		texts = append(texts, *req.Instructions)
	}
	limit := int64(0)
	if req.MaxOutputTokens != nil {
		limit = *req.MaxOutputTokens
	}
	reply, cut := truncateWords(b.replyText(lastUser), limit)
	cu := buildUsage(ResponsesInputTokens(texts...), countWords(reply), b.usage)
	var usage responsesUsage
	usage.InputTokens, usage.OutputTokens, usage.TotalTokens = cu.PromptTokens, cu.CompletionTokens, cu.TotalTokens
	usage.InputTokensDetails.CachedTokens = cu.PromptTokensDetails.CachedTokens
	usage.OutputTokensDetails.ReasoningTokens = cu.CompletionTokensDetails.ReasoningTokens
	n := p.nextID()
	id, msgID := fmt.Sprintf("resp_fake%06d", n), fmt.Sprintf("msg_fake%06d", n)
	setResponseHeaders(w, id)
	resp := responseObject{
		ID: id, Object: "response", CreatedAt: p.opts.Now().Unix(), Status: "completed",
		Error: jsonNull(), IncompleteDetails: jsonNull(), Instructions: req.Instructions,
		MaxOutputTokens: req.MaxOutputTokens, Model: p.responseModel(&b, req.Model), Output: []responsesItem{},
	}
	if cut {
		resp.Status, resp.IncompleteDetails = "incomplete", json.RawMessage(`{"reason":"max_output_tokens"}`)
	}
	item := responsesItem{ID: msgID, Type: "message", Status: "completed", Role: "assistant",
		Content: []responsesPart{{Type: "output_text", Text: reply, Annotations: []json.RawMessage{}}}}
	u, _ := json.Marshal(usage) // numbers only: cannot fail
	if req.Stream {
		p.streamResponses(w, r, b, resp, item, u)
		return
	}
	resp.Output, resp.Usage = []responsesItem{item}, u
	p.writeJSON(w, http.StatusOK, resp, b.fault)
}

func (p *Provider) streamResponses(w http.ResponseWriter, r *http.Request, b behaviour, resp responseObject, item responsesItem, usage json.RawMessage) {
	s := p.newSSE(w, r, b)
	seq := 0
	send := func(typ string, fields map[string]any) bool {
		fields["type"], fields["sequence_number"] = typ, seq
		seq++
		data, err := json.Marshal(fields)
		if err != nil {
			return false
		}
		return s.sendEvent(typ, data)
	}
	final := resp
	resp.Status, resp.Usage = "in_progress", jsonNull()
	if !send("response.created", map[string]any{"response": resp}) {
		return
	}
	empty := item
	empty.Status, empty.Content = "in_progress", []responsesPart{}
	if !send("response.output_item.added", map[string]any{"output_index": 0, "item": empty}) {
		return
	}
	part := responsesPart{Type: "output_text", Annotations: []json.RawMessage{}}
	at := map[string]any{"item_id": item.ID, "output_index": 0, "content_index": 0}
	with := func(k string, v any) map[string]any {
		m := map[string]any{k: v}
		for key, val := range at {
			m[key] = val
		}
		return m
	}
	if !send("response.content_part.added", with("part", part)) {
		return
	}
	if b.fault.Malformed && !s.sendEvent("response.output_text.delta", []byte(`{"type":"response.output_text.delta","delta":"trunc`)) {
		return
	}
	for _, piece := range splitChunks(item.Content[0].Text, b.chunks) {
		if !send("response.output_text.delta", with("delta", piece)) {
			return
		}
	}
	if !send("response.output_text.done", with("text", item.Content[0].Text)) {
		return
	}
	if !send("response.content_part.done", with("part", item.Content[0])) {
		return
	}
	if !send("response.output_item.done", map[string]any{"output_index": 0, "item": item}) {
		return
	}
	final.Output, final.Usage = []responsesItem{item}, usage
	typ := "response.completed"
	if final.Status == "incomplete" {
		typ = "response.incomplete"
	}
	send(typ, map[string]any{"response": final})
}

package llm

import (
	"encoding/json"
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// SetString rewrites the string at path (sjson syntax, as Text.Path and the
// paths of a Response give it) in a JSON body the caller has already parsed
// with this package.
func SetString(body []byte, path, value string) ([]byte, error) {
	b, err := sjson.SetBytes(body, path, value)
	if err != nil {
		return nil, fmt.Errorf("rewrite %s: %w", path, err)
	}
	return b, nil
}

// SetModel returns body with its top-level "model" set to model; changed is
// false (and body returned as is) when it already names model. It is the
// per-attempt rewrite for a target, on a body the downstream role parsed
// and checked (one object, no duplicate key).
func SetModel(body []byte, model string) (out []byte, changed bool, err error) {
	if gjson.GetBytes(body, "model").Str == model {
		return body, false, nil
	}
	out, err = sjson.SetBytes(body, "model", model)
	if err != nil {
		return nil, false, fmt.Errorf("rewrite model: %w", err)
	}
	return out, true, nil
}

// DeltaChunk renders a chat.completion.chunk carrying content as choice
// index's delta (text a streaming guard held back and now releases).
func DeltaChunk(index int64, content string) []byte {
	type delta struct {
		Content string `json:"content"`
	}
	type choice struct {
		Index        int64   `json:"index"`
		Delta        delta   `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	}
	b, _ := json.Marshal(struct { // strings and integers: cannot fail
		Object  string   `json:"object"`
		Choices []choice `json:"choices"`
	}{"chat.completion.chunk", []choice{{Index: index, Delta: delta{content}}}})
	return b
}

// ModelList renders GET /v1/models for the given model ids.
func ModelList(ids []string, ownedBy string) []byte {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: make([]model, 0, len(ids))}
	for _, id := range ids {
		list.Data = append(list.Data, model{ID: id, Object: "model", OwnedBy: ownedBy})
	}
	b, _ := json.Marshal(list) // plain strings: cannot fail
	return b
}

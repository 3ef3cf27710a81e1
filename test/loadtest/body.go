package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// chatBody returns a chat completion request of exactly size bytes: a
// system and a user message, the user message padded with words.
func chatBody(size int) ([]byte, error) {
	build := func(user string) ([]byte, error) {
		return json.Marshal(map[string]any{
			"model": "gpt-4o-mini",
			"messages": []map[string]string{
				{"role": "system", "content": "You are a concise assistant. Answer in one sentence."},
				{"role": "user", "content": user},
			},
			"temperature": 0,
		})
	}
	base, err := build("")
	if err != nil {
		return nil, fmt.Errorf("chat body: %w", err)
	}
	if size < len(base) {
		return nil, fmt.Errorf("chat body: %d bytes is below the minimum %d", size, len(base))
	}
	const words = "please summarise the quarterly report for the northern region and list the three largest risks "
	pad := strings.Repeat(words, (size-len(base))/len(words)+1)[:size-len(base)]
	body, err := build(pad)
	if err != nil {
		return nil, fmt.Errorf("chat body: %w", err)
	}
	return body, nil
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// seqMark starts the user message of every chat body; withSeq writes a
// request's sequence number into its digits.
const seqMark = "Request 0000000000: "

// chatBody returns a chat completion request of exactly size bytes: a
// system and a user message, the user message padded with words and
// starting with seqMark.
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
	base, err := build(seqMark)
	if err != nil {
		return nil, fmt.Errorf("chat body: %w", err)
	}
	if size < len(base) {
		return nil, fmt.Errorf("chat body: %d bytes is below the minimum %d", size, len(base))
	}
	const words = "please summarise the quarterly report for the northern region and list the three largest risks "
	pad := strings.Repeat(words, (size-len(base))/len(words)+1)[:size-len(base)]
	body, err := build(seqMark + pad)
	if err != nil {
		return nil, fmt.Errorf("chat body: %w", err)
	}
	return body, nil
}

// withSeq returns a copy of body (from chatBody) whose user message carries
// n: every request a unique prompt, as in real traffic, so that neither
// cache tier answers from an earlier request.
func withSeq(body []byte, n int64) []byte {
	out := bytes.Clone(body)
	i := bytes.Index(out, []byte(seqMark))
	if i < 0 {
		return out
	}
	digits := strconv.AppendInt(nil, n%10_000_000_000, 10)
	start := i + len("Request ") + 10 - len(digits)
	copy(out[start:], digits)
	return out
}

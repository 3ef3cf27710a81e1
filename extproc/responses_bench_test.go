package extproc

import (
	"fmt"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

const responsesJSON = `{"id":"resp_1","object":"response","created_at":1,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-4o-mini-2024-07-18","output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"The quarterly report shows revenue up 12% with costs flat; the team should focus on the two open hiring requisitions.","annotations":[]}]}],"usage":{"input_tokens":420,"input_tokens_details":{"cached_tokens":0},"output_tokens":31,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":451}}`

// responsesStream is a Responses API stream of n deltas, one event per
// STREAMED chunk, ending with response.completed.
func responsesStream(n int) []*extprocv3.ProcessingRequest {
	ev := func(typ, data string) string { return "event: " + typ + "\ndata: " + data + "\n\n" }
	chunk := func(s string, end bool) *extprocv3.ProcessingRequest {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(s), EndOfStream: end}}}
	}
	msgs := []*extprocv3.ProcessingRequest{chunk(ev("response.created", `{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","model":"gpt-4o-mini-2024-07-18","output":[],"usage":null}}`), false)}
	for i := range n {
		msgs = append(msgs, chunk(ev("response.output_text.delta", fmt.Sprintf(`{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":" word%d","sequence_number":%d}`, i, i+1)), false))
	}
	final := strings.Replace(responsesJSON, `{"id"`, `{"type":"response.completed","sequence_number":99,"response":{"id"`, 1) + "}"
	return append(msgs, chunk(ev("response.completed", final), true))
}

// BenchmarkResponsesExchange is one metered POST /v1/responses exchange
// over a real loopback gRPC connection: the buffered JSON answer, and a
// stream of 16 deltas ending with response.completed (one STREAMED chunk
// per event).
func BenchmarkResponsesExchange(b *testing.B) {
	ts := startServer(b, nil)
	headers := map[string]string{}
	for k, v := range demoHeaders {
		headers[k] = v
	}
	headers[":path"] = "/v1/responses"
	body := `{"model":"small","instructions":"You are a helpful assistant.","max_output_tokens":256,"input":"please summarise the quarterly report for our team meeting tomorrow"}`
	headers["content-length"] = fmt.Sprint(len(body))
	b.Run("json", func(b *testing.B) {
		msgs := append(request(body, headers),
			responseHeaders(":status", "200", "content-type", "application/json"),
			responseBody(responsesJSON))
		runExchanges(b, ts.client, msgs)
	})
	b.Run("stream16", func(b *testing.B) {
		sbody := strings.Replace(body, `"input"`, `"stream":true,"input"`, 1)
		h := map[string]string{}
		for k, v := range headers {
			h[k] = v
		}
		h["content-length"] = fmt.Sprint(len(sbody))
		msgs := append(request(sbody, h), responseHeaders(":status", "200", "content-type", "text/event-stream"))
		runExchanges(b, ts.client, append(msgs, responsesStream(16)...))
	})
}

package fakeprovider_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

func TestResponsesJSON(t *testing.T) {
	_, base := start(t, fakeprovider.Options{Reply: "one two three four"})
	c := sdk(base)
	p := responses.ResponseNewParams{
		Model:        "gpt-4o-mini",
		Instructions: openai.String("be brief"),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("hello there", responses.EasyInputMessageRoleUser),
			responses.ResponseInputItemParamOfMessage(responses.ResponseInputMessageContentListParam{
				{OfInputText: &responses.ResponseInputTextParam{Text: "and you"}},
			}, responses.EasyInputMessageRoleUser),
		}},
	}
	out, err := c.Responses.New(ctxT(t), p)
	require.NoError(t, err)
	assert.Equal(t, "one two three four", out.OutputText())
	assert.Equal(t, responses.ResponseStatusCompleted, out.Status)
	assert.Equal(t, fakeprovider.ResponsesInputTokens("hello there", "and you", "be brief"), out.Usage.InputTokens)
	assert.Equal(t, int64(4), out.Usage.OutputTokens)
	assert.Equal(t, out.Usage.InputTokens+4, out.Usage.TotalTokens)

	p.MaxOutputTokens = openai.Int(2)
	out, err = c.Responses.New(ctxT(t), p, option.WithHeader("x-fake-usage", "prompt=9,cached=3,reasoning=1"))
	require.NoError(t, err)
	assert.Equal(t, "one two", out.OutputText())
	assert.Equal(t, responses.ResponseStatusIncomplete, out.Status)
	assert.Equal(t, int64(9), out.Usage.InputTokens)
	assert.Equal(t, int64(3), out.Usage.InputTokensDetails.CachedTokens)
	assert.Equal(t, int64(1), out.Usage.OutputTokensDetails.ReasoningTokens)
}

func TestResponsesStream(t *testing.T) {
	_, base := start(t, fakeprovider.Options{Reply: "one two three four"})
	c := sdk(base)
	s := c.Responses.NewStreaming(ctxT(t), responses.ResponseNewParams{
		Model: "gpt-4o-mini", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
	}, option.WithHeader("x-fake-chunks", "2"))
	var types []string
	var text strings.Builder
	var usage responses.ResponseUsage
	for s.Next() {
		ev := s.Current()
		types = append(types, ev.Type)
		if ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
		if ev.Type == "response.completed" {
			usage = ev.Response.Usage
		}
	}
	require.NoError(t, s.Err())
	assert.Equal(t, []string{"response.created", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.done",
		"response.content_part.done", "response.output_item.done", "response.completed"}, types)
	assert.Equal(t, "one two three four", text.String())
	assert.Equal(t, fakeprovider.ResponsesInputTokens("hi"), usage.InputTokens)
	assert.Equal(t, int64(4), usage.OutputTokens)
}

func TestResponsesStreamWireShape(t *testing.T) {
	_, base := start(t, fakeprovider.Options{})
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/responses", strings.NewReader(`{"model":"m","input":"hi","stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NotEmpty(t, lines)
	assert.Equal(t, "event: response.created", lines[0], "every event names its type")
	assert.True(t, strings.HasPrefix(lines[1], `data: {`))
	assert.NotContains(t, strings.Join(lines, "\n"), "[DONE]", "a Responses stream has no [DONE]")
}

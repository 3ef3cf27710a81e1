package e2e

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Responses API (POST /v1/responses) through the gateway, with the
// official SDK's Responses client.
func init() {
	scenarios = append(scenarios,
		scenario{name: "ResponsesJSONMeteredExact", run: responsesJSONMetered},
		scenario{name: "ResponsesStreamMeteredFromCompleted", run: responsesStreamMetered},
		scenario{name: "ResponsesBudgetRejectsMaxOutputTokens", opts: Options{DailyCapA: 0.0001}, run: responsesBudget},
		scenario{name: "ResponsesRedactsInputPII", opts: Options{Extra: guardrails}, run: responsesRedactsInput},
		scenario{name: "ResponsesStreamRedactsCard", opts: Options{Extra: guardrails}, run: responsesStreamRedactsCard},
		scenario{name: "ResponsesJSONRedactsCard", opts: Options{Extra: guardrails}, run: responsesJSONRedactsCard},
		scenario{name: "ResponsesStreamBlockedOnOutput", opts: Options{Extra: guardrails}, run: responsesStreamBlocked},
		scenario{name: "ResponsesCutStreamEstimated", run: responsesCutStream},
	)
}

func responsesParams(model, text string) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model: model,
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(text)},
	}
}

func responsesJSONMetered(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	var want float64
	for i, tc := range []struct{ model, usage string }{
		{"small", ""},
		{"large", "prompt=1234,completion=567,cached=200,reasoning=100"},
	} {
		var hr *http.Response
		opts := []option.RequestOption{option.WithResponseInto(&hr)}
		if tc.usage != "" {
			opts = append(opts, option.WithHeader("x-fake-usage", tc.usage))
		}
		p := responsesParams(tc.model, "count the words in request "+strconv.Itoa(i))
		p.Instructions = openai.String("be brief")
		out, err := c.Responses.New(ctx(t), p, opts...)
		require.NoError(t, err)
		assert.NotEmpty(t, out.OutputText())
		if tc.usage == "" {
			// The fake counts the words of the input and the instructions.
			assert.Equal(t, ChatPromptTokensOf("count the words in request "+strconv.Itoa(i), "be brief"), out.Usage.InputTokens)
		} else {
			assert.Equal(t, int64(1234), out.Usage.InputTokens)
			assert.Equal(t, int64(100), out.Usage.OutputTokensDetails.ReasoningTokens)
		}
		target := tc.model + "-1"
		cost := ExpectedCost(target, out.Usage.InputTokens, out.Usage.OutputTokens, out.Usage.InputTokensDetails.CachedTokens)
		want += cost
		got, err := strconv.ParseFloat(hr.Header.Get("x-tollgate-cost-usd"), 64)
		require.NoError(t, err, "x-tollgate-cost-usd header")
		assert.InDelta(t, cost, got, 1e-12, "per-request cost header, case %d", i)
		assert.Equal(t, target, hr.Header.Get("x-tollgate-model"))
		assert.Equal(t, "bypass", hr.Header.Get("x-tollgate-cache"))
	}
	reqs := g.Provider.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "/v1/responses", reqs[0].Path)
	assert.Contains(t, string(reqs[0].Body), `"model":"small-1"`, "the alias is rewritten to the target's model")
	got := g.Eventually("tollgate_cost_usd_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v >= want-1e-12 })
	assert.InDelta(t, want, got, 1e-12)
	assert.Equal(t, 2.0, g.Sum("tollgate_requests_total", map[string]string{"tenant": "a", "outcome": "ok"}))
	assert.Zero(t, g.Sum("tollgate_usage_estimated_total", nil))
}

// ChatPromptTokensOf is the fake's input_tokens for these texts.
func ChatPromptTokensOf(texts ...string) int64 {
	var n int64
	for _, s := range texts {
		n += int64(len(strings.Fields(s))) + 3
	}
	return n
}

func responsesStreamMetered(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	s := c.Responses.NewStreaming(ctx(t), responsesParams("large", "stream me"), option.WithHeader("x-fake-usage", "prompt=321,completion=123,cached=21"))
	var text strings.Builder
	var usage responses.ResponseUsage
	completed := false
	for s.Next() {
		ev := s.Current()
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			completed, usage = true, ev.Response.Usage
		}
	}
	require.NoError(t, s.Err())
	require.True(t, completed, "the client receives response.completed")
	assert.Equal(t, int64(321), usage.InputTokens)
	assert.NotEmpty(t, text.String())
	reqs := g.Provider.Requests()
	require.Len(t, reqs, 1)
	assert.NotContains(t, string(reqs[0].Body), "stream_options", "a Responses stream always carries its usage; nothing is added")
	got := g.Eventually("tollgate_cost_usd_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v > 0 })
	assert.InDelta(t, ExpectedCost("large-1", 321, 123, 21), got, 1e-12)
	assert.Zero(t, g.Sum("tollgate_usage_estimated_total", nil))
	assert.Equal(t, 1.0, g.Sum("tollgate_requests_total", map[string]string{"tenant": "a", "outcome": "ok"}))
}

func responsesBudget(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	p := responsesParams("large", "write a long essay")
	p.MaxOutputTokens = openai.Int(1000) // worst case 0.01 USD > the 0.0001 cap
	_, err := c.Responses.New(ctx(t), p, option.WithMaxRetries(0))
	e := apiError(t, err)
	assert.Equal(t, 429, e.StatusCode)
	assert.Equal(t, "budget_exceeded", e.Code)
	assert.Contains(t, e.Message, "max_output_tokens 1000", "the message names the field the client set")
	assert.Zero(t, g.Provider.Calls(), "the provider is never called")
	assert.Equal(t, 1.0, g.Sum("tollgate_budget_rejections_total", map[string]string{"tenant": "a", "window": "daily"}))

	// Within the cap it goes through and is billed.
	p.MaxOutputTokens = openai.Int(5)
	p.Model = "small"
	_, err = c.Responses.New(ctx(t), p)
	require.NoError(t, err)
	assert.Equal(t, 1, g.Provider.Calls())
}

func responsesRedactsInput(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	p := responses.ResponseNewParams{
		Model: "small",
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage(responses.ResponseInputMessageContentListParam{
				{OfInputText: &responses.ResponseInputTextParam{Text: "Please email jane.doe@example.com about it"}},
			}, responses.EasyInputMessageRoleUser),
		}},
	}
	var hr *http.Response
	out, err := c.Responses.New(ctx(t), p, option.WithHeader("x-fake-reply-mode", "echo"), option.WithResponseInto(&hr))
	require.NoError(t, err)
	assert.Equal(t, "redacted-input", hr.Header.Get("x-tollgate-guardrails"))
	reqs := g.Provider.Requests()
	require.Len(t, reqs, 1)
	assert.NotContains(t, string(reqs[0].Body), "jane.doe@example.com", "the provider must never see the address")
	assert.Contains(t, string(reqs[0].Body), "[EMAIL_1]")
	assert.Contains(t, out.OutputText(), "[EMAIL_1]")
}

func responsesStreamRedactsCard(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	const card = "4111 1111 1111 1111"
	s := c.Responses.NewStreaming(ctx(t), responsesParams("small", "card please"),
		option.WithHeader("x-fake-reply", "your card is "+card+" thanks"), option.WithHeader("x-fake-chunks", "8"))
	var deltas, done, final strings.Builder
	for s.Next() {
		ev := s.Current()
		switch ev.Type {
		case "response.output_text.delta":
			deltas.WriteString(ev.Delta)
		case "response.output_text.done":
			done.WriteString(ev.Text)
		case "response.completed":
			final.WriteString(ev.Response.OutputText())
		}
	}
	require.NoError(t, s.Err())
	for name, got := range map[string]string{"deltas": deltas.String(), "output_text.done": done.String(), "completed": final.String()} {
		assert.NotContains(t, got, card, name)
		assert.Contains(t, got, "your card is", name)
		assert.Contains(t, got, "thanks", name)
	}
	got := g.Eventually("tollgate_cost_usd_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v > 0 })
	assert.Greater(t, got, 0.0)
}

func responsesJSONRedactsCard(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	var hr *http.Response
	out, err := c.Responses.New(ctx(t), responsesParams("small", "card please"),
		option.WithHeader("x-fake-reply", "your card is 4111 1111 1111 1111 thanks"), option.WithResponseInto(&hr))
	require.NoError(t, err)
	assert.NotContains(t, out.OutputText(), "4111 1111 1111 1111")
	assert.Contains(t, out.OutputText(), "your card is")
	assert.Equal(t, "redacted-output", hr.Header.Get("x-tollgate-guardrails"))
}

func responsesCutStream(t *testing.T, g *Gateway) {
	c := g.Client(KeyA, option.WithMaxRetries(0))
	cctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	s := c.Responses.NewStreaming(cctx, responsesParams("small", "tell me a long story"),
		option.WithHeader("x-fake-chunks", "50"), option.WithHeader("x-fake-chunk-delay", "20ms"))
	var text strings.Builder
	deltas := 0
	for s.Next() {
		if ev := s.Current(); ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
			if deltas++; deltas == 3 {
				cancel() // the client goes away mid-stream: no response.completed
				break
			}
		}
	}
	_ = s.Close()
	require.Equal(t, 3, deltas)
	est := g.Eventually("tollgate_usage_estimated_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v >= 1 })
	assert.Equal(t, 1.0, est, "a cut stream is metered from an estimate")
	assert.Equal(t, 1.0, g.Sum("tollgate_requests_total", map[string]string{"tenant": "a", "outcome": "aborted"}))
	// The estimate counts the output text deltas, not only the prompt.
	out := g.Sum("gen_ai_client_token_usage", map[string]string{"gen_ai_operation_name": "responses", "gen_ai_token_type": "output"})
	assert.Positive(t, out, "output tokens estimated from the deltas")
	assert.Positive(t, g.Sum("tollgate_cost_usd_total", map[string]string{"tenant": "a"}))
}

func responsesStreamBlocked(t *testing.T, g *Gateway) {
	const reply = "Your number is 536-80-4398 as requested."
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, g.URL+"/v1/responses",
		strings.NewReader(`{"model":"small","stream":true,"input":"ssn?"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+KeyA)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-fake-reply", reply)
	req.Header.Set("x-fake-chunks", "6")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.NotContains(t, string(raw), "4398", "no event, delta or full-text copy, carries the number")
	assert.Contains(t, string(raw), `"code":"content_blocked"`)
	assert.NotContains(t, string(raw), "response.completed")

	c := g.Client(KeyA, option.WithHeader("x-fake-reply", reply))
	s := c.Responses.NewStreaming(ctx(t), responsesParams("small", "ssn?"))
	for s.Next() {
	}
	require.Error(t, s.Err())
	assert.Contains(t, s.Err().Error(), "guardrail")
	// The blocked answer is still billed: the provider produced it.
	got := g.Eventually("tollgate_cost_usd_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v > 0 })
	assert.Positive(t, got)
}

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

// scenario is one end-to-end behaviour, run against a fresh gateway.
type scenario struct {
	name string
	opts Options
	run  func(t *testing.T, g *Gateway)
}

// scenarios is the single source of truth shared by every Envoy runner.
var scenarios = []scenario{
	{name: "MeteringExact", run: meteringExact},
	{name: "StreamUsageNotAsked", run: streamUsageNotAsked},
	{name: "StreamUsageAsked", run: streamUsageAsked},
	{name: "BudgetRejectsBeforeProvider", opts: Options{DailyCapA: 0.0001}, run: budgetRejectsBeforeProvider},
	{name: "BudgetConcurrentNoOvershoot", opts: Options{DailyCapA: 0.02}, run: budgetConcurrentNoOvershoot},
	{name: "UnknownModel404", run: unknownModel},
	{name: "BadKey401", run: badKey},
	{name: "MalformedJSON400", run: malformedJSON},
	{name: "TooLarge413", run: tooLarge},
	{name: "ClientDisconnectMidStreamMetered", run: clientDisconnect},
	{name: "ProviderErrorPassesThroughUnbilled", run: providerError},
	{name: "PassThroughOtherPaths", run: passThrough},
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func chatParams(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

func meteringExact(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	var want float64
	// Mixed models, usage shapes (cached tokens, reasoning tokens) and modes.
	cases := []struct {
		model, usage string
	}{
		{"small", ""},
		{"large", ""},
		{"small", "prompt=1234,completion=567,cached=200"},
		{"large", "prompt=10,completion=2000,reasoning=1500"},
		{"small", "prompt=999999,completion=1,cached=999999"},
	}
	for i, tc := range cases {
		var resp *http.Response
		opts := []option.RequestOption{option.WithResponseInto(&resp)}
		if tc.usage != "" {
			opts = append(opts, option.WithHeader("x-fake-usage", tc.usage))
		}
		out, err := c.Chat.Completions.New(ctx(t), chatParams(tc.model, "count the words in request "+strconv.Itoa(i)), opts...)
		require.NoError(t, err)
		target := tc.model + "-1"
		cost := ExpectedCost(target, out.Usage.PromptTokens, out.Usage.CompletionTokens, out.Usage.PromptTokensDetails.CachedTokens)
		want += cost
		got, err := strconv.ParseFloat(resp.Header.Get("x-tollgate-cost-usd"), 64)
		require.NoError(t, err, "x-tollgate-cost-usd header")
		assert.InDelta(t, cost, got, 1e-12, "per-request cost header, case %d", i)
		assert.Equal(t, "fake", resp.Header.Get("x-tollgate-provider"))
		assert.Equal(t, target, resp.Header.Get("x-tollgate-model"))
	}
	// A streamed request is metered from its usage chunk.
	s := c.Chat.Completions.NewStreaming(ctx(t), withUsage(chatParams("large", "stream me")), option.WithHeader("x-fake-usage", "prompt=321,completion=123,cached=21"))
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	require.NoError(t, s.Err())
	want += ExpectedCost("large-1", 321, 123, 21)

	got := g.Eventually("tollgate_cost_usd_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v >= want-1e-12 })
	assert.InDelta(t, want, got, 1e-12, "sum of tollgate_cost_usd_total")
	assert.InDelta(t, 6, g.Sum("tollgate_requests_total", map[string]string{"tenant": "a", "outcome": "ok"}), 0)
	assert.Zero(t, g.Sum("tollgate_usage_estimated_total", nil))
}

func withUsage(p openai.ChatCompletionNewParams) openai.ChatCompletionNewParams {
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	return p
}

func streamUsageNotAsked(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	s := c.Chat.Completions.NewStreaming(ctx(t), chatParams("small", "hello there"), option.WithHeader("x-fake-usage", "prompt=40,completion=60"))
	acc := openai.ChatCompletionAccumulator{}
	sawUsageChunk := false
	for s.Next() {
		ch := s.Current()
		if len(ch.Choices) == 0 {
			sawUsageChunk = true
		}
		acc.AddChunk(ch)
	}
	require.NoError(t, s.Err())
	assert.False(t, sawUsageChunk, "the client did not ask for usage: the gateway must strip the usage chunk it requested")
	assert.NotEmpty(t, acc.Choices[0].Message.Content)
	// The provider was asked for usage.
	reqs := g.Provider.Requests()
	require.Len(t, reqs, 1)
	assert.Contains(t, string(reqs[0].Body), `"include_usage":true`)
	got := g.Eventually("tollgate_cost_usd_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v > 0 })
	assert.InDelta(t, ExpectedCost("small-1", 40, 60, 0), got, 1e-12)
	assert.Zero(t, g.Sum("tollgate_usage_estimated_total", nil))
}

func streamUsageAsked(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	s := c.Chat.Completions.NewStreaming(ctx(t), withUsage(chatParams("small", "hello there")), option.WithHeader("x-fake-usage", "prompt=41,completion=61,cached=1"))
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	require.NoError(t, s.Err())
	assert.Equal(t, int64(41), acc.Usage.PromptTokens, "the usage chunk the client asked for reaches it")
	assert.Equal(t, int64(61), acc.Usage.CompletionTokens)
	got := g.Eventually("tollgate_cost_usd_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v > 0 })
	assert.InDelta(t, ExpectedCost("small-1", 41, 61, 1), got, 1e-12)
}

func apiError(t *testing.T, err error) *openai.Error {
	t.Helper()
	require.Error(t, err)
	var e *openai.Error
	require.True(t, errors.As(err, &e), "want an OpenAI API error, got %v", err)
	return e
}

func budgetRejectsBeforeProvider(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	p := chatParams("large", "write a long essay")
	p.MaxTokens = openai.Int(1000) // worst case 0.01 USD > the 0.0001 cap
	_, err := c.Chat.Completions.New(ctx(t), p)
	e := apiError(t, err)
	assert.Equal(t, 429, e.StatusCode)
	assert.Equal(t, "budget_exceeded", e.Code)
	assert.Zero(t, g.Provider.Calls(), "the provider must not be called")
	assert.Equal(t, 1.0, g.Sum("tollgate_budget_rejections_total", map[string]string{"tenant": "a", "window": "daily"}))
	// Another tenant is unaffected.
	cb := g.Client(KeyB)
	_, err = cb.Chat.Completions.New(ctx(t), p)
	require.NoError(t, err)
}

func budgetConcurrentNoOvershoot(t *testing.T, g *Gateway) {
	// Each request reserves (prompt estimate + 1000 output tokens) at the
	// large model's price, about 0.01 USD: the 0.02 cap admits at most two
	// at a time, and every admitted request's actual cost is far below its
	// reservation, so spend can never cross the cap.
	c := g.Client(KeyA)
	var ok, rejected, other int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := chatParams("large", "concurrent request")
			p.MaxTokens = openai.Int(1000)
			_, err := c.Chat.Completions.New(ctx(t), p, option.WithHeader("x-fake-chunk-delay", "1ms"))
			mu.Lock()
			defer mu.Unlock()
			var e *openai.Error
			switch {
			case err == nil:
				ok++
			case errors.As(err, &e) && e.StatusCode == 429:
				rejected++
			default:
				other++
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	assert.Positive(t, ok)
	assert.Positive(t, rejected)
	assert.Zero(t, other)
	assert.Equal(t, ok, g.Provider.Calls(), "only admitted requests reach the provider")
	spent := g.Eventually("tollgate_cost_usd_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v > 0 })
	assert.LessOrEqual(t, spent, 0.02)
}

func unknownModel(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	_, err := c.Chat.Completions.New(ctx(t), chatParams("gpt-nonexistent", "hi"))
	e := apiError(t, err)
	assert.Equal(t, 404, e.StatusCode)
	assert.Equal(t, "model_not_found", e.Code)
	assert.Zero(t, g.Provider.Calls())
}

func badKey(t *testing.T, g *Gateway) {
	c := g.Client("sk-wrong")
	_, err := c.Chat.Completions.New(ctx(t), chatParams("small", "hi"))
	e := apiError(t, err)
	assert.Equal(t, 401, e.StatusCode)
	assert.Equal(t, "invalid_api_key", e.Code)
	// A client-sent tenant header is not trusted (trust_header is off).
	c2 := g.Client("sk-wrong", option.WithHeader("x-tollgate-tenant", "a"))
	_, err = c2.Chat.Completions.New(ctx(t), chatParams("small", "hi"))
	assert.Equal(t, 401, apiError(t, err).StatusCode)
	assert.Zero(t, g.Provider.Calls())
}

func malformedJSON(t *testing.T, g *Gateway) {
	// Duplicate keys would let Tollgate meter one value while the provider
	// obeys another; deep nesting would cost memory per level.
	deep := `{"model":"small","messages":[{"role":"user","content":"x"}],"x":` + strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + `}`
	for _, body := range []string{`{"model":"small","messages":[`, "{\"model\":\"small\xff\"}", `[]`, `{}`,
		`{"model":"small","max_tokens":1,"messages":[{"role":"user","content":"x"}],"max_tokens":500}`, deep} {
		resp, err := g.Post("/v1/chat/completions", KeyA, body)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 400, resp.StatusCode, "body %q", body)
		assert.Contains(t, string(b), `"type":"invalid_request_error"`)
	}
	assert.Zero(t, g.Provider.Calls())

	// An empty POST (content-length: 0) ends the stream with the headers:
	// the server answers the request_headers message itself (400), and a
	// forged x-tollgate-route header routes nothing (routes match the
	// dynamic metadata only ext_proc writes).
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", nil)
	req.Header.Set("x-tollgate-route", "small")
	req.Header.Set("Authorization", "Bearer "+KeyA)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
	// A path Tollgate passes through reaches no provider either.
	req, _ = http.NewRequest(http.MethodPost, g.URL+"/v1/files", strings.NewReader("x"))
	req.Header.Set("x-tollgate-route", "small")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
	assert.Zero(t, g.Provider.Calls())
}

func tooLarge(t *testing.T, g *Gateway) {
	big := make([]byte, 70_000) // listen.max_body_bytes is 65536
	for i := range big {
		big[i] = 'a'
	}
	resp, err := g.Post("/v1/chat/completions", KeyA, `{"model":"small","messages":[{"role":"user","content":"`+string(big)+`"}]}`)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 413, resp.StatusCode)
	assert.Contains(t, string(b), "request_too_large")
	assert.Zero(t, g.Provider.Calls())
}

func clientDisconnect(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	cctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	s := c.Chat.Completions.NewStreaming(cctx, chatParams("small", "tell me a long story"),
		option.WithHeader("x-fake-chunks", "50"), option.WithHeader("x-fake-chunk-delay", "20ms"))
	read := 0
	for s.Next() {
		read++
		if read == 3 {
			cancel() // the client goes away mid-stream
			break
		}
	}
	_ = s.Close()
	require.Equal(t, 3, read)
	est := g.Eventually("tollgate_usage_estimated_total", map[string]string{"tenant": "a"}, func(v float64) bool { return v >= 1 })
	assert.Equal(t, 1.0, est, "a cut stream is metered from an estimate")
	assert.Positive(t, g.Sum("tollgate_cost_usd_total", map[string]string{"tenant": "a"}))
	assert.Equal(t, 1.0, g.Sum("tollgate_requests_total", map[string]string{"tenant": "a", "outcome": "aborted"}))
}

func providerError(t *testing.T, g *Gateway) {
	c := g.Client(KeyA, option.WithHeader("x-fake-fault", "503"))
	_, err := c.Chat.Completions.New(ctx(t), chatParams("small", "hi"))
	e := apiError(t, err)
	assert.Equal(t, 503, e.StatusCode)
	assert.Equal(t, 1.0, g.Eventually("tollgate_requests_total", map[string]string{"outcome": "provider_error"}, func(v float64) bool { return v >= 1 }))
	assert.Zero(t, g.Sum("tollgate_cost_usd_total", nil))
}

func passThrough(t *testing.T, g *Gateway) {
	// ext_proc passes other paths through untouched (and counts them), with
	// one message; the shipped routes only know model aliases, so Envoy's
	// catch-all answers 404.
	resp, err := http.Get(g.URL + "/internal/status")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
	assert.Contains(t, string(b), `"code":"model_not_found"`)
	assert.Zero(t, g.Provider.Calls())
	assert.Equal(t, 1.0, g.Eventually("tollgate_passthrough_requests_total", nil, func(v float64) bool { return v >= 1 }))

	// An OpenAI API path Tollgate does not serve gets an honest 404 (POST
	// /v1/responses is served; a stored response under it is not).
	resp, err = http.Post(g.URL+"/v1/responses/resp_123/cancel", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
	assert.Contains(t, string(b), `"code":"unsupported_path"`)
	assert.Contains(t, string(b), "/v1/responses")

	// /v1/models lists the configured aliases (after authentication).
	resp, err = http.Get(g.URL + "/v1/models")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+KeyA)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var list struct {
		Object string
		Data   []struct{ ID string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	assert.Equal(t, []string{"embed", "fallback", "large", "small"}, ids)
	assert.Zero(t, g.Provider.Calls())
}

func init() {
	scenarios = append(scenarios,
		scenario{name: "FallbackOn429UsesSecondTargetPrice", opts: Options{Provider: faulty("429")}, run: fallback429},
		scenario{name: "AllTargetsDown503", opts: Options{Provider: faulty("503"), Backup: faulty("503")}, run: allDown},
		scenario{name: "AllTargetsUnreachable503", opts: Options{Provider: stopped(), Backup: stopped()}, run: allDown},
	)
}

// faulty is a fake provider failing every request with fault.
func faulty(fault string) *fakeprovider.Provider {
	return fakeprovider.New(fakeprovider.Options{Fault: fault})
}

// stopped is a fake provider that refuses connections.
func stopped() *fakeprovider.Provider {
	p := fakeprovider.New(fakeprovider.Options{})
	if _, err := p.Start(); err != nil {
		panic(err)
	}
	_ = p.Close()
	return p
}

func fallback429(t *testing.T, g *Gateway) {
	var resp *http.Response
	c := g.Client(KeyA)
	out, err := c.Chat.Completions.New(ctx(t), chatParams("fallback", "who answers"), option.WithResponseInto(&resp))
	require.NoError(t, err, "the client gets one answer")
	assert.Equal(t, 1, g.Provider.Calls(), "the first target was tried once")
	require.Equal(t, 1, g.Backup.Calls(), "the second target served")
	b := g.Backup.Requests()[0]
	assert.Contains(t, string(b.Body), `"model":"small-1"`, "the upstream role rewrote model for the second target")
	assert.Equal(t, "Bearer "+BackupProviderKey, b.Header.Get("authorization"), "the upstream role injected the backup's credential")
	assert.Equal(t, "backup", resp.Header.Get("x-tollgate-provider"))
	assert.Equal(t, "small-1", resp.Header.Get("x-tollgate-model"))
	want := ExpectedCost("small-1", out.Usage.PromptTokens, out.Usage.CompletionTokens, 0)
	got := g.Eventually("tollgate_cost_usd_total", map[string]string{"tenant": "a", "provider": "backup", "model": "small-1"}, func(v float64) bool { return v > 0 })
	assert.InDelta(t, want, got, 1e-12, "priced at the target that served")
	assert.Zero(t, g.Sum("tollgate_cost_usd_total", map[string]string{"provider": "fake"}))
}

func allDown(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	_, err := c.Chat.Completions.New(ctx(t), chatParams("fallback", "anyone?"))
	e := apiError(t, err)
	assert.Equal(t, 503, e.StatusCode)
	assert.NotEmpty(t, e.Message)
	assert.NotEmpty(t, e.Type, "an OpenAI-style error body")
	assert.Zero(t, g.Sum("tollgate_cost_usd_total", nil))
	assert.Equal(t, 1.0, g.Eventually("tollgate_requests_total", map[string]string{"outcome": "provider_error"}, func(v float64) bool { return v >= 1 }))
}

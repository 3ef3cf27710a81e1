package fakeprovider_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

func start(t *testing.T, opts fakeprovider.Options) (*fakeprovider.Provider, string) {
	t.Helper()
	p, base := fakeprovider.StartTest(t, opts)
	return p, base
}

func sdk(base string, opts ...option.RequestOption) openai.Client {
	all := append([]option.RequestOption{
		option.WithBaseURL(base + "/v1/"),
		option.WithAPIKey("sk-test"),
		option.WithMaxRetries(0),
	}, opts...)
	return openai.NewClient(all...)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func chatParams(msgs ...string) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{Model: "gpt-4o-mini"}
	for i, m := range msgs {
		if i == 0 && len(msgs) > 1 {
			p.Messages = append(p.Messages, openai.SystemMessage(m))
			continue
		}
		p.Messages = append(p.Messages, openai.UserMessage(m))
	}
	return p
}

func TestChatCompletion(t *testing.T) {
	tests := []struct {
		name       string
		opts       fakeprovider.Options
		reqOpts    []option.RequestOption
		msgs       []string
		maxTokens  int64
		wantText   string
		wantModel  string
		wantFinish string
		wantUsage  [4]int64 // prompt, completion, cached, reasoning
	}{
		{
			name: "default reply", msgs: []string{"be brief", "what is the capital of France?"},
			wantText: fakeprovider.DefaultReply, wantModel: "gpt-4o-mini", wantFinish: "stop",
			wantUsage: [4]int64{2 + 3 + 6 + 3, 10, 0, 0},
		},
		{
			name: "header reply", msgs: []string{"hi"}, reqOpts: []option.RequestOption{option.WithHeader("x-fake-reply", "one two three")},
			wantText: "one two three", wantModel: "gpt-4o-mini", wantFinish: "stop", wantUsage: [4]int64{4, 3, 0, 0},
		},
		{
			name: "echo by header", msgs: []string{"system text", "my card is 4111 1111 1111 1111"},
			reqOpts:  []option.RequestOption{option.WithHeader("x-fake-reply-mode", "echo")},
			wantText: "my card is 4111 1111 1111 1111", wantModel: "gpt-4o-mini", wantFinish: "stop", wantUsage: [4]int64{5 + 10, 7, 0, 0},
		},
		{
			name: "echo by options", opts: fakeprovider.Options{ReplyMode: "echo"}, msgs: []string{"repeat me"},
			wantText: "repeat me", wantModel: "gpt-4o-mini", wantFinish: "stop", wantUsage: [4]int64{5, 2, 0, 0},
		},
		{
			name: "usage header", msgs: []string{"hi"},
			reqOpts:  []option.RequestOption{option.WithHeader("x-fake-usage", "prompt=100,completion=50,cached=40,reasoning=20")},
			wantText: fakeprovider.DefaultReply, wantModel: "gpt-4o-mini", wantFinish: "stop", wantUsage: [4]int64{100, 50, 40, 20},
		},
		{
			name: "usage options, header wins per field", opts: fakeprovider.Options{Usage: mustUsage(t, "prompt=7,completion=8")}, msgs: []string{"hi"},
			reqOpts:  []option.RequestOption{option.WithHeader("x-fake-usage", "completion=9")},
			wantText: fakeprovider.DefaultReply, wantModel: "gpt-4o-mini", wantFinish: "stop", wantUsage: [4]int64{7, 9, 0, 0},
		},
		{
			name: "max tokens truncates", msgs: []string{"hi"}, maxTokens: 3,
			wantText: "Hello! This is", wantModel: "gpt-4o-mini", wantFinish: "length", wantUsage: [4]int64{4, 3, 0, 0},
		},
		{
			name: "degraded fault", msgs: []string{"hi"}, reqOpts: []option.RequestOption{option.WithHeader("x-fake-fault", "degraded")},
			wantText: fakeprovider.DegradedReply, wantModel: "gpt-4o-mini", wantFinish: "stop", wantUsage: [4]int64{4, 8, 0, 0},
		},
		{
			name: "model fault", msgs: []string{"hi"}, reqOpts: []option.RequestOption{option.WithHeader("x-fake-fault", "model=gpt-4o-mini-2099-01-01")},
			wantText: fakeprovider.DefaultReply, wantModel: "gpt-4o-mini-2099-01-01", wantFinish: "stop", wantUsage: [4]int64{4, 10, 0, 0},
		},
		{
			name: "model option", opts: fakeprovider.Options{Model: "served-model"}, msgs: []string{"hi"},
			wantText: fakeprovider.DefaultReply, wantModel: "served-model", wantFinish: "stop", wantUsage: [4]int64{4, 10, 0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, base := start(t, tt.opts)
			c := sdk(base)
			params := chatParams(tt.msgs...)
			if tt.maxTokens > 0 {
				params.MaxCompletionTokens = openai.Int(tt.maxTokens)
			}
			resp, err := c.Chat.Completions.New(ctxT(t), params, tt.reqOpts...)
			require.NoError(t, err)
			require.Len(t, resp.Choices, 1)
			assert.Equal(t, tt.wantText, resp.Choices[0].Message.Content)
			assert.Equal(t, "assistant", string(resp.Choices[0].Message.Role))
			assert.Equal(t, tt.wantFinish, resp.Choices[0].FinishReason)
			assert.Equal(t, tt.wantModel, resp.Model)
			assert.Equal(t, "chat.completion", string(resp.Object))
			assert.Equal(t, "fp_fake", resp.SystemFingerprint) //nolint:staticcheck // the fake sends it as OpenAI does
			assert.NotEmpty(t, resp.ID)
			assert.NotZero(t, resp.Created)
			assert.Equal(t, tt.wantUsage[0], resp.Usage.PromptTokens)
			assert.Equal(t, tt.wantUsage[1], resp.Usage.CompletionTokens)
			assert.Equal(t, tt.wantUsage[0]+tt.wantUsage[1], resp.Usage.TotalTokens)
			assert.Equal(t, tt.wantUsage[2], resp.Usage.PromptTokensDetails.CachedTokens)
			assert.Equal(t, tt.wantUsage[3], resp.Usage.CompletionTokensDetails.ReasoningTokens)
			assert.True(t, resp.Usage.PromptTokensDetails.JSON.CachedTokens.Valid(), "cached_tokens present")
			assert.True(t, resp.Usage.CompletionTokensDetails.JSON.ReasoningTokens.Valid(), "reasoning_tokens present")

			reqs := p.Requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, 1, p.Calls())
			assert.Equal(t, http.MethodPost, reqs[0].Method)
			assert.Equal(t, "/v1/chat/completions", reqs[0].Path)
			assert.Equal(t, "Bearer sk-test", reqs[0].Header.Get("Authorization"))
			var sent struct {
				Model    string `json:"model"`
				Messages []struct {
					Content string `json:"content"`
				} `json:"messages"`
			}
			require.NoError(t, json.Unmarshal(reqs[0].Body, &sent))
			assert.Equal(t, "gpt-4o-mini", sent.Model)
			assert.Equal(t, tt.msgs[len(tt.msgs)-1], sent.Messages[len(sent.Messages)-1].Content)
		})
	}
}

func mustUsage(t *testing.T, s string) fakeprovider.Usage {
	t.Helper()
	u, err := fakeprovider.ParseUsage(s)
	require.NoError(t, err)
	return u
}

func TestChatPromptTokensMatchesProvider(t *testing.T) {
	_, base := start(t, fakeprovider.Options{})
	msgs := []string{"you are a helpful assistant", "count   these\twords\nplease"}
	c := sdk(base)
	resp, err := c.Chat.Completions.New(ctxT(t), chatParams(msgs...))
	require.NoError(t, err)
	assert.Equal(t, fakeprovider.ChatPromptTokens(msgs...), resp.Usage.PromptTokens)
	assert.Equal(t, int64(5+3+4+3), resp.Usage.PromptTokens)
	assert.Equal(t, fakeprovider.Words(fakeprovider.DefaultReply), resp.Usage.CompletionTokens)
}

func TestChatStreaming(t *testing.T) {
	tests := []struct {
		name         string
		includeUsage bool
		reqOpts      []option.RequestOption
		wantText     string
		wantContent  int // content chunks
	}{
		{name: "without usage", wantText: fakeprovider.DefaultReply, wantContent: fakeprovider.DefaultChunks},
		{name: "with usage", includeUsage: true, wantText: fakeprovider.DefaultReply, wantContent: fakeprovider.DefaultChunks},
		{
			name: "chunk count and delay", includeUsage: true,
			reqOpts:  []option.RequestOption{option.WithHeader("x-fake-chunks", "7"), option.WithHeader("x-fake-chunk-delay", "1ms")},
			wantText: fakeprovider.DefaultReply, wantContent: 7,
		},
		{
			name: "more chunks than words splits runes", includeUsage: true,
			reqOpts:  []option.RequestOption{option.WithHeader("x-fake-chunks", "5"), option.WithHeader("x-fake-reply", "ab cd")},
			wantText: "ab cd", wantContent: 5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := start(t, fakeprovider.Options{})
			params := chatParams("say hello")
			if tt.includeUsage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			c := sdk(base)
			stream := c.Chat.Completions.NewStreaming(ctxT(t), params, tt.reqOpts...)
			var acc openai.ChatCompletionAccumulator
			content, finishes, usageChunks := 0, 0, 0
			for stream.Next() {
				chunk := stream.Current()
				require.True(t, acc.AddChunk(chunk))
				assert.Equal(t, "chat.completion.chunk", string(chunk.Object))
				assert.Equal(t, "gpt-4o-mini", chunk.Model)
				if len(chunk.Choices) == 0 {
					usageChunks++
					continue
				}
				if chunk.Choices[0].Delta.Content != "" {
					content++
				}
				if chunk.Choices[0].FinishReason != "" {
					finishes++
					assert.Equal(t, "stop", chunk.Choices[0].FinishReason)
				}
				assert.Equal(t, tt.includeUsage, chunk.JSON.Usage.Valid() || chunk.JSON.Usage.Raw() == "null", "usage key on every chunk iff include_usage")
			}
			require.NoError(t, stream.Err())
			assert.Equal(t, tt.wantText, acc.Choices[0].Message.Content)
			assert.Equal(t, tt.wantContent, content)
			assert.Equal(t, 1, finishes)
			if tt.includeUsage {
				assert.Equal(t, 1, usageChunks)
				assert.Equal(t, int64(2+3), acc.Usage.PromptTokens)
				assert.Equal(t, fakeprovider.Words(tt.wantText), acc.Usage.CompletionTokens)
				assert.Equal(t, acc.Usage.PromptTokens+acc.Usage.CompletionTokens, acc.Usage.TotalTokens)
			} else {
				assert.Equal(t, 0, usageChunks)
				assert.Zero(t, acc.Usage.TotalTokens)
			}
		})
	}
}

// TestChatStreamWireShape reads the raw SSE bytes: event order, flushing
// headers, the usage chunk and [DONE].
func TestChatStreamWireShape(t *testing.T) {
	for _, includeUsage := range []bool{false, true} {
		t.Run(map[bool]string{false: "no usage", true: "usage"}[includeUsage], func(t *testing.T) {
			_, base := start(t, fakeprovider.Options{})
			body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi there"}]`
			if includeUsage {
				body += `,"stream_options":{"include_usage":true}`
			}
			body += `}`
			req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("x-fake-chunks", "2")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
			events := readEvents(t, resp.Body)
			want := 1 + 2 + 1 + 1 // role, content x2, finish, [DONE]
			if includeUsage {
				want++
			}
			require.Len(t, events, want)
			assert.Equal(t, "[DONE]", events[len(events)-1])

			var role map[string]any
			require.NoError(t, json.Unmarshal([]byte(events[0]), &role))
			choice := role["choices"].([]any)[0].(map[string]any)
			assert.Equal(t, map[string]any{"role": "assistant", "content": "", "refusal": nil}, choice["delta"])
			assert.Contains(t, choice, "finish_reason")
			assert.Nil(t, choice["finish_reason"])

			var fin map[string]any
			require.NoError(t, json.Unmarshal([]byte(events[3]), &fin))
			fc := fin["choices"].([]any)[0].(map[string]any)
			assert.Equal(t, "stop", fc["finish_reason"])
			assert.Equal(t, map[string]any{}, fc["delta"])
			_, hasUsage := fin["usage"]
			assert.Equal(t, includeUsage, hasUsage)
			if includeUsage {
				assert.Nil(t, fin["usage"])
				var last map[string]any
				require.NoError(t, json.Unmarshal([]byte(events[4]), &last))
				assert.Equal(t, []any{}, last["choices"])
				u := last["usage"].(map[string]any)
				assert.Equal(t, float64(5), u["prompt_tokens"])
				assert.Equal(t, float64(10), u["completion_tokens"])
				assert.Equal(t, float64(15), u["total_tokens"])
				assert.Equal(t, float64(0), u["prompt_tokens_details"].(map[string]any)["cached_tokens"])
				assert.Equal(t, float64(0), u["completion_tokens_details"].(map[string]any)["reasoning_tokens"])
			}
		})
	}
}

// readEvents returns the data payloads of an SSE body until EOF.
func readEvents(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			out = append(out, data)
		} else {
			require.Empty(t, line, "only data lines and blank separators")
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func TestCompletions(t *testing.T) {
	_, base := start(t, fakeprovider.Options{})
	c := sdk(base)
	resp, err := c.Completions.New(ctxT(t), openai.CompletionNewParams{
		Model:  "gpt-3.5-turbo-instruct",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say this is a test")},
	})
	require.NoError(t, err)
	require.Len(t, resp.Choices, 1)
	assert.Equal(t, fakeprovider.DefaultReply, resp.Choices[0].Text)
	assert.Equal(t, "stop", string(resp.Choices[0].FinishReason))
	assert.Equal(t, "text_completion", string(resp.Object))
	assert.Equal(t, "gpt-3.5-turbo-instruct", resp.Model)
	assert.Equal(t, int64(5), resp.Usage.PromptTokens)
	assert.Equal(t, int64(10), resp.Usage.CompletionTokens)
	assert.Equal(t, int64(15), resp.Usage.TotalTokens)

	t.Run("stream with usage", func(t *testing.T) {
		stream := c.Completions.NewStreaming(ctxT(t), openai.CompletionNewParams{
			Model:         "gpt-3.5-turbo-instruct",
			Prompt:        openai.CompletionNewParamsPromptUnion{OfArrayOfStrings: []string{"first prompt", "echo this please"}},
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		}, option.WithHeader("x-fake-reply-mode", "echo"), option.WithHeader("x-fake-chunks", "3"))
		var text strings.Builder
		var usage openai.CompletionUsage
		finish, pieces := "", 0
		for stream.Next() {
			ch := stream.Current()
			assert.Equal(t, "text_completion", string(ch.Object))
			if len(ch.Choices) == 0 {
				usage = ch.Usage
				continue
			}
			if ch.Choices[0].Text != "" {
				pieces++
			}
			text.WriteString(ch.Choices[0].Text)
			if ch.Choices[0].FinishReason != "" {
				finish = string(ch.Choices[0].FinishReason)
			}
		}
		require.NoError(t, stream.Err())
		assert.Equal(t, "echo this please", text.String())
		assert.Equal(t, 3, pieces)
		assert.Equal(t, "stop", finish)
		assert.Equal(t, int64(2+3), usage.PromptTokens)
		assert.Equal(t, int64(3), usage.CompletionTokens)
		assert.Equal(t, int64(8), usage.TotalTokens)
	})
}

func TestEmbeddings(t *testing.T) {
	_, base := start(t, fakeprovider.Options{})
	c := sdk(base)
	inputs := []string{"the cat sat on the mat", "the cat sat on the mat", "quarterly revenue grew"}
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		t.Run(string(format), func(t *testing.T) {
			resp, err := c.Embeddings.New(ctxT(t), openai.EmbeddingNewParams{
				Model:          openai.EmbeddingModelTextEmbedding3Small,
				Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
				EncodingFormat: format,
				Dimensions:     openai.Int(32),
			})
			require.NoError(t, err)
			assert.Equal(t, "list", string(resp.Object))
			assert.Equal(t, "text-embedding-3-small", resp.Model)
			require.Len(t, resp.Data, 3)
			for i, d := range resp.Data {
				assert.Equal(t, int64(i), d.Index)
				assert.Equal(t, "embedding", string(d.Object))
				require.Len(t, d.Embedding, 32)
				want := fakeprovider.Embed(inputs[i], 32)
				for j := range want {
					assert.InDelta(t, float64(want[j]), d.Embedding[j], 1e-6)
				}
			}
			assert.Equal(t, resp.Data[0].Embedding, resp.Data[1].Embedding, "same text, same vector")
			assert.NotEqual(t, resp.Data[0].Embedding, resp.Data[2].Embedding)
			assert.Equal(t, int64(6+6+3), resp.Usage.PromptTokens)
			assert.Equal(t, resp.Usage.PromptTokens, resp.Usage.TotalTokens)
		})
	}
}

func TestModels(t *testing.T) {
	_, base := start(t, fakeprovider.Options{Models: []string{"a", "b"}})
	c := sdk(base)
	page, err := c.Models.List(ctxT(t))
	require.NoError(t, err)
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		assert.Equal(t, "model", string(m.Object))
		assert.Equal(t, "fakeprovider", m.OwnedBy)
	}
	assert.Equal(t, []string{"a", "b"}, ids)

	m, err := c.Models.Get(ctxT(t), "b")
	require.NoError(t, err)
	assert.Equal(t, "b", m.ID)
	_, err = c.Models.Get(ctxT(t), "nope")
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusNotFound, apiErr.StatusCode)
	assert.Equal(t, "model_not_found", apiErr.Code)
}

func TestStatusFaults(t *testing.T) {
	tests := []struct {
		fault      string
		viaOptions bool
		wantStatus int
		wantType   string
		wantCode   string
	}{
		{fault: "429", wantStatus: 429, wantType: "requests", wantCode: "rate_limit_exceeded"},
		{fault: "500", wantStatus: 500, wantType: "server_error"},
		{fault: "503", wantStatus: 503, wantType: "server_error", wantCode: "service_unavailable"},
		{fault: "503", viaOptions: true, wantStatus: 503, wantType: "server_error", wantCode: "service_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.fault+map[bool]string{true: " options"}[tt.viaOptions], func(t *testing.T) {
			var opts fakeprovider.Options
			var reqOpts []option.RequestOption
			if tt.viaOptions {
				opts.Fault = tt.fault
			} else {
				reqOpts = append(reqOpts, option.WithHeader("x-fake-fault", tt.fault))
			}
			p, base := start(t, opts)
			c := sdk(base)
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					s := c.Chat.Completions.NewStreaming(ctxT(t), chatParams("hi"), reqOpts...)
					for s.Next() {
					}
					err = s.Err()
				} else {
					_, err = c.Chat.Completions.New(ctxT(t), chatParams("hi"), reqOpts...)
				}
				var apiErr *openai.Error
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, tt.wantStatus, apiErr.StatusCode)
				assert.Equal(t, tt.wantType, apiErr.Type)
				assert.Equal(t, tt.wantCode, apiErr.Code)
				assert.NotEmpty(t, apiErr.Message)
				if tt.wantStatus == 429 {
					assert.Equal(t, "1", apiErr.Response.Header.Get("Retry-After"))
				}
			}
			assert.Equal(t, 2, p.Calls(), "no SDK retries")
		})
	}
}

func TestRetryAfterHonouredBySDK(t *testing.T) {
	// With retries on, the SDK retries a 429 and a 503; the provider sees each attempt.
	p, base := start(t, fakeprovider.Options{})
	c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(1))
	_, err := c.Chat.Completions.New(ctxT(t), chatParams("hi"), option.WithHeader("x-fake-fault", "503"))
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 2, p.Calls())
}

func TestSlowFirstByte(t *testing.T) {
	_, base := start(t, fakeprovider.Options{})
	c := sdk(base)
	began := time.Now()
	_, err := c.Chat.Completions.New(ctxT(t), chatParams("hi"), option.WithHeader("x-fake-fault", "slow-first-byte=150ms"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(began), 150*time.Millisecond)

	ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Millisecond)
	defer cancel()
	_, err = c.Chat.Completions.New(ctx, chatParams("hi"), option.WithHeader("x-fake-fault", "slow-first-byte=5s"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestCutStream(t *testing.T) {
	p, base := start(t, fakeprovider.Options{})
	params := chatParams("hi")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	c := sdk(base)
	stream := c.Chat.Completions.NewStreaming(ctxT(t), params, option.WithHeader("x-fake-fault", "cut-stream=3"), option.WithHeader("x-fake-chunks", "4"))
	var acc openai.ChatCompletionAccumulator
	n := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		n++
	}
	require.Error(t, stream.Err(), "an abrupt close is an error, not a clean end")
	assert.ErrorIs(t, stream.Err(), io.ErrUnexpectedEOF)
	assert.Equal(t, 3, n, "role chunk + 2 content chunks")
	assert.Equal(t, "Hello! This is a deterministic ", acc.Choices[0].Message.Content)
	assert.Zero(t, acc.Usage.TotalTokens)

	t.Run("non-streaming", func(t *testing.T) {
		_, err := c.Chat.Completions.New(ctxT(t), chatParams("hi"), option.WithHeader("x-fake-fault", "cut-stream=20"))
		require.Error(t, err)
		var apiErr *openai.Error
		assert.False(t, errors.As(err, &apiErr), "a transport error, not an API error")
	})
	assert.Equal(t, 2, p.Calls())
}

func TestMalformedJSON(t *testing.T) {
	_, base := start(t, fakeprovider.Options{})
	c := sdk(base)
	_, err := c.Chat.Completions.New(ctxT(t), chatParams("hi"), option.WithHeader("x-fake-fault", "malformed-json"))
	require.Error(t, err)

	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, base+"/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
	require.NoError(t, err)
	req.Header.Set("x-fake-fault", "malformed-json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.False(t, json.Valid(body))
	assert.True(t, strings.HasPrefix(string(body), `{"id":"chatcmpl-`))

	stream := c.Chat.Completions.NewStreaming(ctxT(t), chatParams("hi"), option.WithHeader("x-fake-fault", "malformed-json"))
	n := 0
	for stream.Next() {
		n++
	}
	require.Error(t, stream.Err())
	assert.Equal(t, 1, n, "the role chunk parses, the next does not")
}

func TestAuthAndErrors(t *testing.T) {
	p, base := start(t, fakeprovider.Options{APIKey: "sk-right"})
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		auth       string
		header     [2]string
		wantStatus int
		wantCode   string
	}{
		{name: "wrong key", method: "POST", path: "/v1/chat/completions", body: `{}`, auth: "Bearer sk-wrong", wantStatus: 401, wantCode: "invalid_api_key"},
		{name: "not json", method: "POST", path: "/v1/chat/completions", body: `{`, auth: "Bearer sk-right", wantStatus: 400},
		{name: "no messages", method: "POST", path: "/v1/chat/completions", body: `{"model":"m","messages":[]}`, auth: "Bearer sk-right", wantStatus: 400, wantCode: "empty_array"},
		{name: "unknown path", method: "POST", path: "/v1/nope", body: `{}`, auth: "Bearer sk-right", wantStatus: 404},
		{name: "wrong method", method: "GET", path: "/v1/chat/completions", auth: "Bearer sk-right", wantStatus: 404},
		{name: "bad fault", method: "POST", path: "/v1/chat/completions", body: `{"model":"m","messages":[{"role":"user","content":"x"}]}`, auth: "Bearer sk-right", header: [2]string{"x-fake-fault", "explode"}, wantStatus: 400},
		{name: "ok", method: "POST", path: "/v1/chat/completions", body: `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a b"},{"type":"image_url","image_url":{"url":"x"}}]}]}`, auth: "Bearer sk-right", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctxT(t), tt.method, base+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", tt.auth)
			if tt.header[0] != "" {
				req.Header.Set(tt.header[0], tt.header[1])
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var body struct {
				Error *struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Code    *string `json:"code"`
				} `json:"error"`
				Usage struct {
					PromptTokens int64 `json:"prompt_tokens"`
				} `json:"usage"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			if tt.wantStatus == 200 {
				assert.Nil(t, body.Error)
				assert.Equal(t, int64(2+3), body.Usage.PromptTokens)
				return
			}
			require.NotNil(t, body.Error)
			assert.NotEmpty(t, body.Error.Message)
			assert.NotEmpty(t, body.Error.Type)
			if tt.wantCode != "" {
				require.NotNil(t, body.Error.Code)
				assert.Equal(t, tt.wantCode, *body.Error.Code)
			}
		})
	}
	assert.Equal(t, 5, p.Calls(), "the mux's 404s are not recorded")
}

func TestRecordingIsCopiedAndReset(t *testing.T) {
	p, base := start(t, fakeprovider.Options{})
	c := sdk(base)
	_, err := c.Chat.Completions.New(ctxT(t), chatParams("first"), option.WithHeader("x-trace", "1"))
	require.NoError(t, err)
	got := p.Requests()
	require.Len(t, got, 1)
	got[0].Body[0] = 'X'
	got[0].Header.Set("x-trace", "mutated")
	again := p.Requests()
	assert.Equal(t, byte('{'), again[0].Body[0])
	assert.Equal(t, "1", again[0].Header.Get("x-trace"))

	p.Reset()
	assert.Zero(t, p.Calls())
	assert.Empty(t, p.Requests())
	_, err = c.Chat.Completions.New(ctxT(t), chatParams("second"))
	require.NoError(t, err)
	assert.Equal(t, 1, p.Calls())
}

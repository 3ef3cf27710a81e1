package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/fakeprovider"
	"github.com/tollgate-dev/tollgate/test/redistest"
)

const cacheOn = `
cache:
  enabled: true
  exact: {enabled: true}
  semantic: {enabled: true}
`

func init() {
	scenarios = append(scenarios,
		scenario{name: "CacheSameRequestTwice", opts: Options{Extra: cacheOn}, run: cacheSameTwice},
		scenario{name: "CacheTenantIsolation", opts: Options{Extra: cacheOn}, run: cacheTenantIsolation},
		scenario{name: "CacheParaphraseHitsLookalikeMisses", opts: Options{Extra: cacheOn}, run: cacheParaphrase},
		scenario{name: "CacheStreamedHitReplays", opts: Options{Extra: cacheOn}, run: cacheStreamHit},
		scenario{name: "CacheNoStoreNoCache", opts: Options{Extra: cacheOn}, run: cacheControl},
		scenario{name: "CacheErrorsNotStored", opts: Options{Extra: cacheOn}, run: cacheErrorsNotStored},
	)
}

// ask sends one echo-mode chat request and returns the answer and the
// x-tollgate-cache header.
func ask(t *testing.T, g *Gateway, key, text string, opts ...option.RequestOption) (string, http.Header) {
	t.Helper()
	var resp *http.Response
	c := g.Client(key, append([]option.RequestOption{option.WithHeader("x-fake-reply-mode", "echo"), option.WithResponseInto(&resp)}, opts...)...)
	p := chatParams("small", text)
	p.Temperature = openai.Float(0)
	out, err := c.Chat.Completions.New(ctx(t), p)
	require.NoError(t, err)
	return out.Choices[0].Message.Content, resp.Header
}

func cacheSameTwice(t *testing.T, g *Gateway) {
	a1, h1 := ask(t, g, KeyA, "What is the boiling point of water at sea level?")
	assert.Equal(t, "miss", h1.Get("x-tollgate-cache"))
	a2, h2 := ask(t, g, KeyA, "What is the boiling point of water at sea level?")
	assert.Equal(t, "hit", h2.Get("x-tollgate-cache"))
	assert.Equal(t, a1, a2)
	assert.Equal(t, 1, g.Provider.Calls(), "the provider sees one call")
	assert.Positive(t, g.Sum("tollgate_cache_saved_usd_total", map[string]string{"tenant": "a"}))
	assert.Equal(t, 1.0, g.Sum("tollgate_requests_total", map[string]string{"outcome": "cache_hit"}))
}

func cacheTenantIsolation(t *testing.T, g *Gateway) {
	ask(t, g, KeyA, "Summarise our secret roadmap")
	_, h := ask(t, g, KeyB, "Summarise our secret roadmap")
	assert.Equal(t, "miss", h.Get("x-tollgate-cache"), "tenant b must never get tenant a's answer")
	assert.Equal(t, 2, g.Provider.Calls())
}

func cacheParaphrase(t *testing.T, g *Gateway) {
	first, _ := ask(t, g, KeyA, "What is the capital of France?")
	para, h := ask(t, g, KeyA, "what is the capital of france")
	assert.Equal(t, "hit", h.Get("x-tollgate-cache"), "a paraphrase hits")
	assert.Equal(t, first, para)
	assert.NotEmpty(t, h.Get("x-tollgate-cache-similarity"))

	ask(t, g, KeyA, "How many moons does planet 4 have?")
	other, h := ask(t, g, KeyA, "How many moons does planet 5 have?")
	assert.Equal(t, "miss", h.Get("x-tollgate-cache"), "a look-alike with a different number misses")
	assert.Contains(t, other, "5")
	_, h = ask(t, g, KeyA, "What is the capital of Germany?")
	assert.Equal(t, "miss", h.Get("x-tollgate-cache"))
}

func cacheStreamHit(t *testing.T, g *Gateway) {
	c := g.Client(KeyA, option.WithHeader("x-fake-reply-mode", "echo"))
	p := chatParams("small", "Stream the list of primary colours")
	p.Temperature = openai.Float(0)
	first := c.Chat.Completions.NewStreaming(ctx(t), withUsage(p))
	text1, err := streamText(t, first)
	require.NoError(t, err)

	var resp *http.Response
	second := c.Chat.Completions.NewStreaming(ctx(t), withUsage(p), option.WithResponseInto(&resp))
	acc := openai.ChatCompletionAccumulator{}
	for second.Next() {
		acc.AddChunk(second.Current())
	}
	require.NoError(t, second.Err())
	assert.Equal(t, "hit", resp.Header.Get("x-tollgate-cache"))
	assert.Equal(t, text1, acc.Choices[0].Message.Content, "the replayed stream carries the same answer")
	assert.Positive(t, acc.Usage.CompletionTokens, "the usage chunk the client asked for is replayed")
	assert.Equal(t, 1, g.Provider.Calls())
}

func cacheControl(t *testing.T, g *Gateway) {
	ask(t, g, KeyA, "no store please", option.WithHeader("cache-control", "no-store"))
	_, h := ask(t, g, KeyA, "no store please")
	assert.Equal(t, "miss", h.Get("x-tollgate-cache"), "no-store: nothing was stored")

	ask(t, g, KeyA, "cached answer")
	_, h = ask(t, g, KeyA, "cached answer", option.WithHeader("cache-control", "no-cache"))
	assert.Equal(t, "bypass", h.Get("x-tollgate-cache"), "no-cache: the lookup is skipped")
	assert.Equal(t, 4, g.Provider.Calls())
}

func cacheErrorsNotStored(t *testing.T, g *Gateway) {
	c := g.Client(KeyA, option.WithHeader("x-fake-fault", "500"))
	_, err := c.Chat.Completions.New(ctx(t), chatParams("small", "this fails"))
	require.Error(t, err)
	_, h := ask(t, g, KeyA, "this fails")
	assert.Equal(t, "miss", h.Get("x-tollgate-cache"))
	assert.Equal(t, 2, g.Provider.Calls())
}

// TestCacheSharedAcrossReplicasAndRedisDown: two replicas on one Redis share
// a hit; with Redis stopped, requests keep working from the local tier.
func TestCacheSharedAcrossReplicasAndRedisDown(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	p, _ := fakeprovider.StartTest(t, fakeprovider.Options{})
	extra := cacheOn + "  backend: redis\n  redis: {addr: \"" + rds.Addr + "\"}\n"
	r1 := StartEmulated(t, Options{Extra: extra, Provider: p})
	r2 := StartEmulated(t, Options{Extra: extra, Provider: p})

	a1, _ := ask(t, r1, KeyA, "Which replica answers this question?")
	var a2 string
	var h http.Header
	deadline := time.Now().Add(5 * time.Second)
	for {
		a2, h = ask(t, r2, KeyA, "Which replica answers this question?", option.WithHeader("cache-control", "no-store"))
		if h.Get("x-tollgate-cache") == "hit" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, "hit", h.Get("x-tollgate-cache"), "replica 2 serves replica 1's entry from Redis")
	assert.Equal(t, a1, a2)

	rds.Stop()
	for i := 0; i < 3; i++ {
		_, h := ask(t, r1, KeyA, "Redis is down now", option.WithHeader("x-fake-usage", "prompt=1,completion=1"))
		assert.NotEmpty(t, h.Get("x-tollgate-cache"))
	}
	_, h = ask(t, r1, KeyA, "Which replica answers this question?")
	assert.Equal(t, "hit", h.Get("x-tollgate-cache"), "the local tier still serves")
}

func init() {
	scenarios = append(scenarios, scenario{name: "CacheNeverStoresGuardedStream", opts: Options{Extra: cacheOn + guardrails}, run: cacheGuardedStream})
}

// A streamed answer whose card the output guard redacted is not cached: a
// later identical request must not be replayed the raw answer.
func cacheGuardedStream(t *testing.T, g *Gateway) {
	reply := option.WithHeader("x-fake-reply", "The card on file is 4111 1111 1111 1111 today.")
	c := g.Client(KeyA, reply)
	p := chatParams("small", "which card")
	p.Temperature = openai.Float(0)
	for i := 0; i < 2; i++ {
		var resp *http.Response
		text, err := streamText(t, c.Chat.Completions.NewStreaming(ctx(t), withUsage(p), option.WithResponseInto(&resp)))
		require.NoError(t, err)
		assert.NotContains(t, text, "4111 1111 1111 1111", "round %d", i)
		assert.NotEqual(t, "hit", resp.Header.Get("x-tollgate-cache"), "round %d", i)
	}
	assert.Equal(t, 2, g.Provider.Calls())
}

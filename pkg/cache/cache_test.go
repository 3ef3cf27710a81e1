package cache

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func completionJSON(content string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-test",
		"choices": []any{map[string]any{
			"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": content},
		}},
		"usage": map[string]any{"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
	})
	return b
}

func chatBody(text string) string {
	b, _ := json.Marshal(map[string]any{
		"model": "gpt", "temperature": 0,
		"messages": []any{map[string]any{"role": "user", "content": text}},
	})
	return string(b)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCache(t *testing.T, mutate func(*Config), opts ...Option) (*Cache, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	c, err := New(cfg, reg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, reg
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func store(t *testing.T, c *Cache, tenant, body, answer string) {
	t.Helper()
	r, err := c.NewRequest(tenant, "gpt", []byte(body))
	require.NoError(t, err)
	require.NoError(t, c.Store(ctxT(t), r, completionJSON(answer)))
}

func lookup(t *testing.T, c *Cache, tenant, body string) (Hit, bool) {
	t.Helper()
	r, err := c.NewRequest(tenant, "gpt", []byte(body))
	require.NoError(t, err)
	return c.Lookup(ctxT(t), r)
}

func TestExactHit(t *testing.T) {
	c, reg := newTestCache(t, nil)
	store(t, c, "acme", chatBody("What is the capital of France?"), "Paris")

	hit, ok := lookup(t, c, "acme", chatBody("What is   the capital of France?"))
	require.True(t, ok)
	assert.Equal(t, KindExact, hit.Kind)
	assert.JSONEq(t, string(completionJSON("Paris")), string(hit.Body))
	assert.Equal(t, 1.0, testutil.ToFloat64(c.metrics.requests.WithLabelValues(KindExact, resultHit)))
	assert.Equal(t, 1.0, testutil.ToFloat64(c.metrics.stores.WithLabelValues(storeStored)))
	n, err := testutil.GatherAndCount(reg, "tollgate_cache_requests_total")
	require.NoError(t, err)
	assert.Equal(t, 5, n)
}

func TestSemanticCache(t *testing.T) {
	// A low threshold, so that the look-alikes below are candidates and the
	// difference guard is what rejects them.
	c, _ := newTestCache(t, func(cfg *Config) { cfg.Semantic.Threshold = 0.5 })
	store(t, c, "acme", chatBody("What is the capital of France?"), "Paris")
	store(t, c, "acme", chatBody("How do I reverse a linked list in Go?"), "code")

	tests := []struct {
		name   string
		tenant string
		prompt string
		hit    bool
		veto   string
	}{
		{"paraphrase", "acme", "what's the capital of France", true, ""},
		{"punctuation and case", "acme", "What is the capital of france!", true, ""},
		{"other country", "acme", "What is the capital of Germany?", false, VetoEntity},
		{"other country lower case", "acme", "what is the capital of germany?", false, VetoEntity},
		{"negation", "acme", "How do I not reverse a linked list in Go?", false, VetoNegation},
		{"other language", "acme", "How do I reverse a linked list in Rust?", false, VetoEntity},
		{"other tenant", "globex", "What is the capital of France?", false, ""},
		{"unrelated", "acme", "Tell me a joke about cats", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.ToFloat64(c.metrics.vetoes.WithLabelValues(tc.veto))
			hit, ok := lookup(t, c, tc.tenant, chatBody(tc.prompt))
			assert.Equal(t, tc.hit, ok)
			if tc.hit {
				assert.Equal(t, KindSemantic, hit.Kind)
				assert.GreaterOrEqual(t, hit.Similarity, 0.5)
				assert.Contains(t, string(hit.Body), "Paris")
			}
			if tc.veto != "" {
				assert.Equal(t, before+1, testutil.ToFloat64(c.metrics.vetoes.WithLabelValues(tc.veto)))
			}
		})
	}
}

func TestSemanticWithoutGuardHitsLookAlikes(t *testing.T) {
	// The same look-alike that the guard vetoes is a hit without it (and
	// without the verifier): the guard, not the threshold, keeps it out.
	c, _ := newTestCache(t, func(cfg *Config) {
		cfg.Semantic.Threshold = 0.5
		cfg.Semantic.DifferenceGuard = false
		cfg.Semantic.Verifier = false
	})
	store(t, c, "acme", chatBody("What is the capital of France?"), "Paris")
	_, ok := lookup(t, c, "acme", chatBody("What is the capital of Germany?"))
	assert.True(t, ok)
}

func TestSemanticVerifier(t *testing.T) {
	// Guard off: the verifier alone must separate the paraphrase from the
	// look-alikes, which all reach its cosine floor.
	c, _ := newTestCache(t, func(cfg *Config) { cfg.Semantic.DifferenceGuard = false })
	require.NotNil(t, c.verifier)
	assert.Equal(t, VerifierFloor, c.cfg.Semantic.Threshold, "threshold 0 selects the verifier floor")
	store(t, c, "acme", chatBody("What is the capital of France?"), "Paris")
	store(t, c, "acme", chatBody("How can I convert US dollars to euros?"), "rate")
	store(t, c, "acme", chatBody("How can I improve my English speaking skills?"), "practice")

	tests := []struct {
		prompt string
		hit    bool
	}{
		{"what's the capital of France", true},
		{"How do I improve my English speaking skills?", true},
		{"What is the capital of Germany?", false},
		{"How can I convert euros to US dollars?", false},
		{"What is the population of France?", false},
	}
	for _, tc := range tests {
		t.Run(tc.prompt, func(t *testing.T) {
			before := testutil.ToFloat64(c.metrics.vetoes.WithLabelValues(VetoVerifier))
			_, ok := lookup(t, c, "acme", chatBody(tc.prompt))
			assert.Equal(t, tc.hit, ok)
			if !tc.hit {
				assert.Equal(t, before+1, testutil.ToFloat64(c.metrics.vetoes.WithLabelValues(VetoVerifier)))
			}
		})
	}
}

func TestVerifierNeedsBuiltinEmbedder(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Semantic.Embedder = EmbedderConfig{Kind: EmbedderOpenAI, URL: "http://127.0.0.1:1", Model: "m"}
	require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig)
	cfg.Semantic.Verifier = false
	require.NoError(t, cfg.Validate())
	assert.Equal(t, DefaultThreshold, cfg.withDefaults().Semantic.Threshold)

	_, err := New(DefaultConfig(), nil, WithEmbedder(failingEmbedder{}))
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestEarlierTurnsPartition(t *testing.T) {
	c, _ := newTestCache(t, func(cfg *Config) { cfg.Semantic.Threshold = 0.8 })
	conv := func(first, last string) string {
		b, _ := json.Marshal(map[string]any{"model": "gpt", "temperature": 0, "messages": []any{
			map[string]any{"role": "user", "content": first},
			map[string]any{"role": "assistant", "content": "ok"},
			map[string]any{"role": "user", "content": last},
		}})
		return string(b)
	}
	store(t, c, "acme", conv("We talk about Python.", "How do I sort a list?"), "sorted()")
	_, ok := lookup(t, c, "acme", conv("We talk about Python.", "how do I sort a list"))
	assert.True(t, ok, "same history, paraphrased last turn")
	_, ok = lookup(t, c, "acme", conv("We talk about Haskell.", "How do I sort a list?"))
	assert.False(t, ok, "different history must not share answers")
}

func TestNotCacheable(t *testing.T) {
	c, _ := newTestCache(t, func(cfg *Config) { cfg.MaxTemperature = 0.5 })
	ctx := ctxT(t)
	tests := []struct {
		name   string
		body   string
		bypass string
	}{
		{"n>1", `{"n":3,"temperature":0,"messages":[{"role":"user","content":"hello there"}]}`, ""},
		{"above ceiling", `{"temperature":0.7,"messages":[{"role":"user","content":"hello there"}]}`, ""},
		{"default temperature above ceiling", `{"messages":[{"role":"user","content":"hello there"}]}`, ""},
		{"no-store from caller", `{"temperature":0,"messages":[{"role":"user","content":"hello there"}]}`, "no_store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.NewRequest("acme", "gpt", []byte(tc.body))
			require.NoError(t, err)
			if tc.bypass != "" {
				r.Bypass(tc.bypass)
			}
			ok, _ := r.Cacheable()
			assert.False(t, ok)
			require.NoError(t, c.Store(ctx, r, completionJSON("hi")))
			// A fresh request for the same body must not find anything.
			r2, err := c.NewRequest("acme", "gpt", []byte(tc.body))
			require.NoError(t, err)
			if tc.bypass != "" {
				ok2, _ := r2.Cacheable()
				require.True(t, ok2)
			}
			_, hit := c.Lookup(ctx, r2)
			assert.False(t, hit)
		})
	}
	assert.Equal(t, 4.0, testutil.ToFloat64(c.metrics.stores.WithLabelValues(storeBypass)))
	assert.Equal(t, 0.0, testutil.ToFloat64(c.metrics.stores.WithLabelValues(storeStored)))
}

func TestStoreRejectsInvalidResponses(t *testing.T) {
	c, _ := newTestCache(t, nil)
	ctx := ctxT(t)
	body := chatBody("hello")
	for _, resp := range []string{
		`not json`,
		`{"error":{"message":"rate limited","type":"rate_limit"}}`,
		`{"object":"chat.completion","choices":[]}`,
		`{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"cut"}}]}`,
		`{"object":"text_completion","choices":[{"index":0,"text":"x","finish_reason":"stop"}]}`,
	} {
		r, err := c.NewRequest("acme", "gpt", []byte(body))
		require.NoError(t, err)
		err = c.Store(ctx, r, []byte(resp))
		assert.True(t, errors.Is(err, ErrInvalidResponse), "response %s: %v", resp, err)
		_, ok := c.Lookup(ctx, r)
		assert.False(t, ok)
	}
	assert.Equal(t, 5.0, testutil.ToFloat64(c.metrics.stores.WithLabelValues(storeInvalid)))
}

func TestTTL(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	c, _ := newTestCache(t, func(cfg *Config) {
		cfg.Exact.TTL = time.Minute
		cfg.Semantic.Threshold = 0.8
	}, WithClock(clk.now))
	store(t, c, "acme", chatBody("What is the capital of France?"), "Paris")
	_, ok := lookup(t, c, "acme", chatBody("What is the capital of France?"))
	require.True(t, ok)
	clk.advance(2 * time.Minute)
	_, ok = lookup(t, c, "acme", chatBody("What is the capital of France?"))
	assert.False(t, ok, "exact entry expired")
	_, ok = lookup(t, c, "acme", chatBody("what's the capital of France"))
	assert.False(t, ok, "semantic entry expired")
}

func TestDisabledTiers(t *testing.T) {
	c, _ := newTestCache(t, func(cfg *Config) {
		cfg.Exact.Enabled = false
		cfg.Semantic.Enabled = false
	})
	store(t, c, "acme", chatBody("What is the capital of France?"), "Paris")
	_, ok := lookup(t, c, "acme", chatBody("What is the capital of France?"))
	assert.False(t, ok)

	sem, _ := newTestCache(t, func(cfg *Config) { cfg.Exact.Enabled = false })
	store(t, sem, "acme", chatBody("What is the capital of France?"), "Paris")
	hit, ok := lookup(t, sem, "acme", chatBody("What is the capital of France?"))
	require.True(t, ok)
	assert.Equal(t, KindSemantic, hit.Kind)
}

type failingEmbedder struct{}

func (failingEmbedder) Embed(context.Context, string) ([]float32, error) {
	return nil, errors.New("embedder down")
}
func (failingEmbedder) ID() string { return "failing" }

func TestEmbedderFailureDegradesToExact(t *testing.T) {
	c, _ := newTestCache(t, func(cfg *Config) { cfg.Semantic.Verifier = false }, WithEmbedder(failingEmbedder{}))
	store(t, c, "acme", chatBody("What is the capital of France?"), "Paris")
	_, ok := lookup(t, c, "acme", chatBody("What is the capital of France?"))
	assert.True(t, ok, "exact still works")
	_, ok = lookup(t, c, "acme", chatBody("what's the capital of France"))
	assert.False(t, ok)
	assert.Equal(t, 2.0, testutil.ToFloat64(c.metrics.embedErrors))
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Semantic.Threshold = 1.5
	cfg.Backend = "memcached"
	cfg.Semantic.Embedder.Kind = "openai"
	err := cfg.Validate()
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	for _, want := range []string{"threshold", "backend", "embedder.url", "embedder.model"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = New(cfg, nil)
	assert.Error(t, err)
	assert.NoError(t, DefaultConfig().Validate())
}

func TestConcurrentUse(t *testing.T) {
	c, _ := newTestCache(t, func(cfg *Config) { cfg.Semantic.Threshold = 0.8 })
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				body := chatBody("question number " + string(rune('a'+i%26)) + " about topic " + string(rune('a'+w)))
				r, err := c.NewRequest("acme", "gpt", []byte(body))
				if err != nil {
					t.Error(err)
					return
				}
				if _, ok := c.Lookup(ctx, r); !ok {
					if err := c.Store(ctx, r, completionJSON("x")); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	assert.Positive(t, c.index.len())
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithTimeout(context.Background(), d)
}

func fixedNow() func() time.Time {
	t0 := time.Unix(1_700_000_000, 0)
	return func() time.Time { return t0 }
}

// countingEmbedder counts the prompts it embeds.
type countingEmbedder struct {
	Embedder
	mu    sync.Mutex
	texts []string
}

func (e *countingEmbedder) Embed(ctx context.Context, text string) ([]float32, error) {
	e.mu.Lock()
	e.texts = append(e.texts, text)
	e.mu.Unlock()
	return e.Embedder.Embed(ctx, text)
}

// TestRequestEmbeddedOnce: a request that misses and is then stored is
// embedded once (Store reuses what Lookup computed), and a lookup reads the
// stored entry's features instead of deriving them again.
func TestRequestEmbeddedOnce(t *testing.T) {
	e := &countingEmbedder{Embedder: NewBuiltinEmbedder(DefaultIDF())}
	c, _ := newTestCache(t, func(cfg *Config) { cfg.Semantic.Verifier = false; cfg.Semantic.Threshold = 0.8 }, WithEmbedder(e))
	ctx := ctxT(t)
	r, err := c.NewRequest("acme", "gpt", []byte(chatBody("What is the capital of France?")))
	require.NoError(t, err)
	_, ok := c.Lookup(ctx, r)
	require.False(t, ok)
	require.NoError(t, c.Store(ctx, r, completionJSON("Paris")))
	assert.Equal(t, []string{"What is the capital of France?"}, e.texts)

	hit, ok := lookup(t, c, "acme", chatBody("what is the capital of France"))
	require.True(t, ok)
	assert.Equal(t, KindSemantic, hit.Kind)
	assert.Len(t, e.texts, 2)

	// The stored entry carries its guard facts; with the verifier, its side.
	cands := c.index.search(r.partition, r.sem.vec, 1)
	require.Len(t, cands, 1)
	assert.NotNil(t, cands[0].entry.facts)
	v, _ := newTestCache(t, nil)
	store(t, v, "acme", chatBody("What is the capital of France?"), "Paris")
	cands = v.index.search(r.partition, r.sem.vec, 1)
	require.Len(t, cands, 1)
	assert.NotNil(t, cands[0].entry.side)
}

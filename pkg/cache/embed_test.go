package cache

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuiltinEmbedder(t *testing.T) {
	e := NewBuiltinEmbedder(DefaultIDF())
	ctx := ctxT(t)
	a, err := e.Embed(ctx, "What is the capital of France?")
	require.NoError(t, err)
	require.Len(t, a, builtinDims)
	var norm float64
	for _, x := range a {
		norm += float64(x) * float64(x)
	}
	assert.InDelta(t, 1, norm, 1e-4)
	again, _ := e.Embed(ctx, "What is the capital of France?")
	assert.Equal(t, a, again, "deterministic")
	para, _ := e.Embed(ctx, "what's the capital of France")
	other, _ := e.Embed(ctx, "Tell me a joke about cats")
	assert.Greater(t, dot(a, para), dot(a, other)+0.5)
	empty, _ := e.Embed(ctx, "")
	assert.Zero(t, dot(empty, empty))
	assert.Equal(t, "builtin-v1-512", e.ID())
}

func TestIDF(t *testing.T) {
	idf := NewIDF([]string{"the cat", "the dog", "the bird", "a cat"})
	assert.Greater(t, idf.Weight("bird"), idf.Weight("cat"))
	assert.Greater(t, idf.Weight("cat"), idf.Weight("the"))
	assert.Equal(t, builtinUnknown, idf.Weight("zebra"))
	assert.Len(t, DefaultIDF().Bytes(), idfBuckets, "embedded table present")
	assert.Greater(t, DefaultIDF().Weight("paris"), DefaultIDF().Weight("what"))
}

// embeddingsServer is a fake OpenAI-compatible embeddings endpoint.
func embeddingsServer(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

func TestOpenAIEmbedder(t *testing.T) {
	var gotAuth, gotModel, gotInput, gotPath string
	url := embeddingsServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		gotPath = r.URL.Path
		var req embeddingRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		gotModel, gotInput = req.Model, req.Input
		_, _ = w.Write([]byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[3,4]}],"model":"m"}`))
	})
	t.Setenv("TEST_EMBED_KEY", "sk-test")
	e, err := NewOpenAIEmbedder(EmbedderConfig{Kind: EmbedderOpenAI, URL: url, Model: "text-embedding-3-small", APIKeyEnv: "TEST_EMBED_KEY"})
	require.NoError(t, err)
	vec, err := e.Embed(ctxT(t), "hello")
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float32{0.6, 0.8}, vec, 1e-6, "normalised")
	assert.Equal(t, "Bearer sk-test", gotAuth)
	assert.Equal(t, "/v1/embeddings", gotPath)
	assert.Equal(t, "text-embedding-3-small", gotModel)
	assert.Equal(t, "hello", gotInput)
	assert.Equal(t, "openai:text-embedding-3-small", e.ID())
}

func TestOpenAIEmbedderErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"status", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"message":"bad key"}}`))
		}, "bad key"},
		{"no vector", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"data":[]}`))
		}, "no vector"},
		{"garbage", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`<html>`))
		}, "decode"},
		{"slow", nil, "deadline"}, // never answers; the client deadline must fire
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler := tc.handler
			if handler == nil {
				release := make(chan struct{})
				handler = func(_ http.ResponseWriter, r *http.Request) {
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}
				url := embeddingsServer(t, handler)
				t.Cleanup(func() { close(release) }) // runs before the server closes
				e, err := NewOpenAIEmbedder(EmbedderConfig{URL: url, Model: "m", Timeout: 100 * time.Millisecond})
				require.NoError(t, err)
				_, err = e.Embed(ctxT(t), "x")
				require.Error(t, err)
				assert.Contains(t, strings.ToLower(err.Error()), tc.want)
				return
			}
			url := embeddingsServer(t, handler)
			e, err := NewOpenAIEmbedder(EmbedderConfig{URL: url, Model: "m", Timeout: 100 * time.Millisecond})
			require.NoError(t, err)
			start := time.Now()
			_, err = e.Embed(ctxT(t), "x")
			require.Error(t, err)
			assert.Contains(t, strings.ToLower(err.Error()), tc.want)
			assert.Less(t, time.Since(start), 5*time.Second)
		})
	}
	_, err := NewOpenAIEmbedder(EmbedderConfig{URL: "http://x", Model: "m", APIKeyEnv: "TOLLGATE_SURELY_UNSET_VAR"})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func TestCacheWithOpenAIEmbedder(t *testing.T) {
	// A fake endpoint that maps texts to fixed directions: paraphrases of
	// the France question point the same way.
	url := embeddingsServer(t, func(w http.ResponseWriter, r *http.Request) {
		var req embeddingRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		vec := []float64{0, 1, 0}
		if strings.Contains(strings.ToLower(req.Input), "france") {
			vec = []float64{1, 0.05, 0}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": []any{map[string]any{"index": 0, "embedding": vec}}})
	})
	c, _ := newTestCache(t, func(cfg *Config) {
		cfg.Semantic.Embedder = EmbedderConfig{Kind: EmbedderOpenAI, URL: url, Model: "m"}
		cfg.Semantic.Verifier = false
		cfg.Semantic.Threshold = 0.99
	})
	store(t, c, "acme", chatBody("What is the capital of France?"), "Paris")
	hit, ok := lookup(t, c, "acme", chatBody("Tell me France's capital city"))
	require.True(t, ok)
	assert.Equal(t, KindSemantic, hit.Kind)
	assert.InDelta(t, 1, hit.Similarity, 1e-6)
	_, ok = lookup(t, c, "acme", chatBody("Tell me a joke"))
	assert.False(t, ok)
	assert.False(t, math.IsNaN(hit.Similarity))
}

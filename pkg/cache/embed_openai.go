package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// OpenAIEmbedder calls an OpenAI-compatible POST {URL}/embeddings endpoint.
type OpenAIEmbedder struct {
	url     string
	model   string
	apiKey  string
	timeout time.Duration
	client  *http.Client
}

var _ Embedder = (*OpenAIEmbedder)(nil)

// maxEmbeddingResponse bounds the response body read from the endpoint.
const maxEmbeddingResponse = 4 << 20

// NewOpenAIEmbedder builds an embedder from config. The API key is read from
// the environment variable named by APIKeyEnv, once, here.
func NewOpenAIEmbedder(cfg EmbedderConfig) (*OpenAIEmbedder, error) {
	if cfg.URL == "" || cfg.Model == "" {
		return nil, fmt.Errorf("%w: openai embedder needs url and model", ErrInvalidConfig)
	}
	e := &OpenAIEmbedder{
		url:     strings.TrimRight(cfg.URL, "/") + "/embeddings",
		model:   cfg.Model,
		timeout: cfg.Timeout,
		client:  &http.Client{},
	}
	if e.timeout <= 0 {
		e.timeout = DefaultEmbedTimeout
	}
	if cfg.APIKeyEnv != "" {
		e.apiKey = os.Getenv(cfg.APIKeyEnv)
		if e.apiKey == "" {
			return nil, fmt.Errorf("%w: environment variable %s (embedder API key) is empty", ErrInvalidConfig, cfg.APIKeyEnv)
		}
	}
	return e, nil
}

// ID implements Embedder.
func (e *OpenAIEmbedder) ID() string { return "openai:" + e.model }

type embeddingRequest struct {
	Model          string `json:"model"`
	Input          string `json:"input"`
	EncodingFormat string `json:"encoding_format"`
}

type embeddingResponse struct {
	Data []struct {
		Embedding []float32 `json:"embedding"`
		Index     int       `json:"index"`
	} `json:"data"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// Embed implements Embedder; the call is bounded by the configured timeout.
// The vector is L2-normalised (the index scores by inner product).
func (e *OpenAIEmbedder) Embed(ctx context.Context, text string) ([]float32, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	reqBody, err := json.Marshal(embeddingRequest{Model: e.model, Input: text, EncodingFormat: "float"})
	if err != nil {
		return nil, fmt.Errorf("encode embeddings request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(reqBody))
	if err != nil {
		return nil, fmt.Errorf("build embeddings request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if e.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.apiKey)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("embeddings request: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbeddingResponse))
	if err != nil {
		return nil, fmt.Errorf("read embeddings response: %w", err)
	}
	var out embeddingResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode embeddings response (status %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := http.StatusText(resp.StatusCode)
		if out.Error != nil && out.Error.Message != "" {
			msg = out.Error.Message
		}
		return nil, fmt.Errorf("embeddings endpoint returned %d: %s", resp.StatusCode, msg)
	}
	if len(out.Data) == 0 || len(out.Data[0].Embedding) == 0 {
		return nil, errors.New("embeddings response has no vector")
	}
	vec := out.Data[0].Embedding
	normalize(vec)
	return vec, nil
}

package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"
)

// ErrExternalDisabled is returned by CheckExternal when no external
// classifier is configured.
var ErrExternalDisabled = errors.New("guard: external classifier not configured")

type moderationRequest struct {
	Model string `json:"model,omitempty"`
	Input string `json:"input"`
}

type moderationResponse struct {
	Results []struct {
		Flagged        bool               `json:"flagged"`
		CategoryScores map[string]float64 `json:"category_scores"`
		Categories     map[string]bool    `json:"categories"`
	} `json:"results"`
}

// HasExternal reports whether an external classifier is configured
// (CheckExternal then calls it).
func (g *Guard) HasExternal() bool { return g.cfg.External != nil }

// ExternalTimeoutFor derives the deadline of one moderation call from the
// ext_proc message timeout (how long Envoy waits for each answer). The call
// runs in the request-body phase before the cache lookup and the budget
// reservation (40% each, see cache.TimeoutsFor and meter.RedisTimeoutsFor),
// so it gets 20%: a hung endpoint fails the call, and the failure mode
// decides, while Envoy still waits. At least 10ms.
func ExternalTimeoutFor(messageTimeout time.Duration) time.Duration {
	return max(messageTimeout/5, 10*time.Millisecond)
}

// CheckExternal sends text to the configured OpenAI-compatible moderation
// endpoint within the configured deadline. It returns one whole-text
// finding per flagged category (Type "MODERATION_<category>", Detector
// "external"), or an error for any failure (transport, status, body); the
// caller applies its failure mode.
func (g *Guard) CheckExternal(ctx context.Context, text string) ([]Finding, error) {
	ec := g.cfg.External
	if ec == nil {
		return nil, ErrExternalDisabled
	}
	timeout := ec.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(moderationRequest{Model: ec.Model, Input: text})
	if err != nil {
		return nil, fmt.Errorf("external classifier: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ec.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("external classifier: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if ec.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+ec.APIKey)
	}
	client := ec.Client
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("external classifier: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("external classifier: status %d", resp.StatusCode)
	}
	var mr moderationResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&mr); err != nil {
		return nil, fmt.Errorf("external classifier: decode: %w", err)
	}
	if len(mr.Results) == 0 {
		return nil, errors.New("external classifier: response has no results")
	}
	var out []Finding
	for _, r := range mr.Results {
		cats := make([]string, 0, len(r.CategoryScores))
		for c := range r.CategoryScores {
			cats = append(cats, c)
		}
		for c, on := range r.Categories {
			if _, ok := r.CategoryScores[c]; !ok && on {
				cats = append(cats, c)
			}
		}
		sort.Strings(cats)
		for _, c := range cats {
			score, hasScore := r.CategoryScores[c]
			hit := r.Flagged && r.Categories[c]
			if !hit && ec.Threshold > 0 && hasScore && score >= ec.Threshold {
				hit = true
			}
			if !hit {
				continue
			}
			if !hasScore {
				score = 1
			}
			out = append(out, Finding{Detector: DetectorExternal, Type: "MODERATION_" + c, Start: 0, End: len(text), Score: score})
		}
		if r.Flagged && len(out) == 0 {
			out = append(out, Finding{Detector: DetectorExternal, Type: "MODERATION", Start: 0, End: len(text), Score: 1})
		}
	}
	return out, nil
}

// Package sdk runs official OpenAI client SDKs other than openai-go (which
// test/e2e uses) against Tollgate behind the Envoy emulator.
//
// The Node check needs Node.js and npm: scripts/deps.sh (part of `make
// test`) installs the pinned SDK from test/sdk/node/package-lock.json when
// node exists, and the test runs scripts/sdk-node-deps.sh itself too. The
// test is skipped where node is not installed, in CI as well (Debian
// machines here have it: apt-get install nodejs npm); under CI=true a
// failed npm install fails the test.
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/e2e"
)

// nodeResult is what check.mjs prints.
type nodeResult struct {
	Node string `json:"node"`
	Chat struct {
		Content  string          `json:"content"`
		Model    string          `json:"model"`
		Usage    json.RawMessage `json:"usage"`
		Provider string          `json:"provider"`
		Target   string          `json:"target"`
		Cost     string          `json:"cost"`
	} `json:"chat"`
	Stream struct {
		Text   string `json:"text"`
		Chunks int    `json:"chunks"`
		Usage  *struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	} `json:"stream"`
	Budget struct {
		Error       *string `json:"error"`
		RateLimit   bool    `json:"rateLimit"`
		Status      int     `json:"status"`
		Code        string  `json:"code"`
		Type        string  `json:"type"`
		ShouldRetry string  `json:"shouldRetry"`
		RetryAfter  *string `json:"retryAfter"`
		MS          int     `json:"ms"`
	} `json:"budget"`
}

// nodeSDK returns the node binary with the pinned SDK installed, or skips.
func nodeSDK(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: the OpenAI Node SDK check needs Node.js and npm (Debian: apt-get install nodejs npm)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "../../scripts/sdk-node-deps.sh").CombinedOutput()
	if err == nil {
		_, err = os.Stat("node/node_modules/openai/package.json")
	}
	if err != nil {
		msg := "installing the OpenAI Node SDK (scripts/sdk-node-deps.sh) failed: %v\n%s"
		if os.Getenv("CI") == "true" {
			t.Fatalf(msg, err, out)
		}
		t.Skipf(msg, err, out)
	}
	return node
}

// sdkVersion is the installed SDK's version; it must be the pinned one.
func sdkVersion(t *testing.T) string {
	t.Helper()
	var pinned, installed struct {
		Version      string            `json:"version"`
		Dependencies map[string]string `json:"dependencies"`
	}
	for _, f := range []struct {
		path string
		into any
	}{{"node/package.json", &pinned}, {"node/node_modules/openai/package.json", &installed}} {
		data, err := os.ReadFile(f.path)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, f.into))
	}
	require.Equal(t, pinned.Dependencies["openai"], installed.Version, "node_modules is stale: scripts/sdk-node-deps.sh")
	return installed.Version
}

// TestOpenAINodeSDK: chat, stream and a budget rejection through the
// official Node SDK with its default retries. The 429 for a budget cap
// carries x-should-retry: false, so the SDK gives up at once instead of
// retrying twice with backoff.
func TestOpenAINodeSDK(t *testing.T) {
	node := nodeSDK(t)
	// Tenant a's cap: "small" with max_tokens 64 fits, "large" with
	// max_tokens 16000 reserves 16000 * $10/1M = $0.16, above the cap.
	g := e2e.StartEmulated(t, e2e.Options{DailyCapA: 0.05})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	script, err := filepath.Abs("node/check.mjs")
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, node, script, g.URL, e2e.KeyA)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "check.mjs: %s", stderr.String())
	var r nodeResult
	require.NoError(t, json.Unmarshal(out, &r), "%s", out)
	t.Logf("openai-node %s on node %s; budget 429 after %d ms", sdkVersion(t), r.Node, r.Budget.MS)

	assert.NotEmpty(t, r.Chat.Content)
	assert.Equal(t, "fake", r.Chat.Provider)
	assert.Equal(t, "small-1", r.Chat.Target)
	assert.NotEmpty(t, r.Chat.Cost)
	assert.NotEqual(t, "null", string(r.Chat.Usage))

	assert.NotEmpty(t, r.Stream.Text)
	assert.Greater(t, r.Stream.Chunks, 1)
	if assert.NotNil(t, r.Stream.Usage, "stream_options.include_usage asked for the usage chunk") {
		assert.Positive(t, r.Stream.Usage.CompletionTokens)
	}

	require.NotNil(t, r.Budget.Error, "the budget request must fail")
	assert.True(t, r.Budget.RateLimit, "RateLimitError, got %s", *r.Budget.Error)
	assert.Equal(t, 429, r.Budget.Status)
	assert.Equal(t, "budget_exceeded", r.Budget.Code)
	assert.Equal(t, "false", r.Budget.ShouldRetry)
	assert.Nil(t, r.Budget.RetryAfter, "no Retry-After on a cap the request can never fit")
	assert.Less(t, r.Budget.MS, 5000, "no retries with backoff")
	assert.Equal(t, 1.0, g.Sum("tollgate_budget_rejections_total", nil), "the SDK sent the request once")
	assert.Equal(t, 2, g.Provider.Calls(), "chat and stream reached the provider; the rejected request did not")
}

package fakeprovider_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

// TestAzureMode: Azure OpenAI's deployment paths, api-version and api-key;
// OpenAI's paths and credential are not served.
func TestAzureMode(t *testing.T) {
	p, base := start(t, fakeprovider.Options{Azure: true, APIKey: "az-key"})
	send := func(path string, header map[string]string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, base+path, strings.NewReader(body))
		require.NoError(t, err)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	chat := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi there"}]}`
	key := map[string]string{"api-key": "az-key"}

	status, body := send("/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21", key, chat)
	require.Equal(t, http.StatusOK, status, body)
	var resp struct {
		Model string
		Usage struct {
			PromptTokens int64 `json:"prompt_tokens"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	assert.Equal(t, "gpt-4o", resp.Model)
	assert.Equal(t, fakeprovider.ChatPromptTokens("hi there"), resp.Usage.PromptTokens, "usage as OpenAI's")
	r := p.Requests()[0]
	assert.Equal(t, "/openai/deployments/my-gpt4o/chat/completions", r.Path)
	assert.Equal(t, "api-version=2024-10-21", r.Query)

	status, _ = send("/openai/deployments/emb/embeddings?api-version=2024-10-21", key, `{"model":"text-embedding-3-small","input":"x"}`)
	assert.Equal(t, http.StatusOK, status)

	for _, tc := range []struct {
		name, path string
		header     map[string]string
		want       int
	}{
		{"no api-version", "/openai/deployments/d/chat/completions", key, http.StatusNotFound},
		{"bearer instead of api-key", "/openai/deployments/d/chat/completions?api-version=2024-10-21", map[string]string{"Authorization": "Bearer az-key"}, http.StatusUnauthorized},
		{"wrong api-key", "/openai/deployments/d/chat/completions?api-version=2024-10-21", map[string]string{"api-key": "other"}, http.StatusUnauthorized},
		{"OpenAI path", "/v1/chat/completions", key, http.StatusNotFound},
	} {
		status, body := send(tc.path, tc.header, chat)
		assert.Equal(t, tc.want, status, "%s: %s", tc.name, body)
		assert.Contains(t, body, `"error"`, tc.name)
	}
}

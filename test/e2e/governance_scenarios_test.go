package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/audit"
)

// governance enables the prompt registry (the repo's prompts/), complexity
// routing of the virtual alias auto, and the audit trail in dir.
func governance(dir string) string {
	abs, _ := filepath.Abs("../../prompts")
	return fmt.Sprintf(`
prompts: {dir: %q}
routing:
  virtual:
    auto:
      tiers:
        simple: {alias: small}
        complex: {alias: large}
audit: {dir: %q, flush_interval: 10ms}
`, abs, dir)
}

func init() {
	scenarios = append(scenarios,
		scenario{name: "PromptTemplateApplied", opts: Options{Extra: governance("")}, run: promptApplied},
		scenario{name: "AutoRoutesByComplexity", opts: Options{Extra: governance("")}, run: autoRoutes},
	)
}

func promptApplied(t *testing.T, g *Gateway) {
	c := g.Client(KeyA,
		option.WithHeader("x-tollgate-prompt", "support-answer@2"),
		option.WithHeader("x-tollgate-prompt-vars", `{"product":"Acme Cloud","language":"French"}`))
	_, err := c.Chat.Completions.New(ctx(t), chatParams("small", "How do I reset my password?"))
	require.NoError(t, err)
	reqs := g.Provider.Requests()
	require.Len(t, reqs, 1)
	body := string(reqs[0].Body)
	assert.Contains(t, body, "You are the support assistant of Acme Cloud.", "the template reached the provider")
	assert.Contains(t, body, "Answer in French")
	assert.Contains(t, body, "Where do I find my invoices?", "few-shot messages are injected")
	assert.Contains(t, body, "How do I reset my password?", "the client's message follows")
	assert.Equal(t, 1.0, g.Sum("tollgate_prompt_requests_total", map[string]string{"prompt": "support-answer@2"}))

	// Unknown prompt and missing variable: 400, provider not called.
	for _, hdrs := range [][2]string{{"support-answer@9", `{"product":"x"}`}, {"support-answer@2", `{}`}} {
		c := g.Client(KeyA, option.WithHeader("x-tollgate-prompt", hdrs[0]), option.WithHeader("x-tollgate-prompt-vars", hdrs[1]))
		_, err := c.Chat.Completions.New(ctx(t), chatParams("small", "hi"))
		assert.Equal(t, 400, apiError(t, err).StatusCode, "prompt %s vars %s", hdrs[0], hdrs[1])
	}
	assert.Equal(t, 1, g.Provider.Calls())
}

func autoRoutes(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	_, err := c.Chat.Completions.New(ctx(t), chatParams("auto", "What time zone is Paris in?"))
	require.NoError(t, err)
	task := "Refactor the following Go service step by step: first explain the design, then prove the locking is correct, " +
		"then rewrite it.\n```go\n" + strings.Repeat("func handler(w http.ResponseWriter, r *http.Request) { mu.Lock(); defer mu.Unlock(); process(r) }\n", 60) + "```\n" +
		"Finally analyse the complexity of each function and compare three alternative designs."
	_, err = c.Chat.Completions.New(ctx(t), chatParams("auto", task))
	require.NoError(t, err)
	reqs := g.Provider.Requests()
	require.Len(t, reqs, 2)
	assert.Contains(t, string(reqs[0].Body), `"model":"small-1"`, "a short question goes to the small alias")
	assert.Contains(t, string(reqs[1].Body), `"model":"large-1"`, "a long code task goes to the large alias")
	assert.Equal(t, 1.0, g.Sum("tollgate_routing_decisions_total", map[string]string{"alias": "auto", "chosen": "small"}))
	assert.Equal(t, 1.0, g.Sum("tollgate_routing_decisions_total", map[string]string{"alias": "auto", "chosen": "large"}))
}

// TestAuditTrailVerifiesAndDetectsTampering: every request leaves one
// hash-chained record; `tollgate audit verify` passes, and fails after one
// byte of the log is edited.
func TestAuditTrailVerifiesAndDetectsTampering(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := StartEmulated(t, Options{Extra: governance(dir) + guardrails})
	c := g.Client(KeyA)
	for i := 0; i < 5; i++ {
		_, err := c.Chat.Completions.New(ctx(t), chatParams("small", fmt.Sprintf("question %d for jane@example.com", i)))
		require.NoError(t, err)
	}
	g.Stop() // flushes the audit log

	var out, errb bytes.Buffer
	require.Equal(t, 0, audit.RunVerify([]string{"verify", "--dir", dir}, &out, &errb), errb.String()+out.String())
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.Equal(t, 5, bytes.Count(data, []byte("\n")), "one record per request")
	assert.NotContains(t, string(data), "jane@example.com", "the audit never holds raw PII")
	assert.Contains(t, string(data), `"type":"EMAIL"`, "findings by type and position")

	i := bytes.Index(data, []byte(`"tenant":"a"`))
	require.Positive(t, i)
	data[i+len(`"tenant":"`)] = 'b' // edit one byte
	require.NoError(t, os.WriteFile(files[0], data, 0o600))
	out.Reset()
	errb.Reset()
	assert.Equal(t, 1, audit.RunVerify([]string{"verify", "--dir", dir}, &out, &errb), "tampering is detected")
}

func init() {
	scenarios = append(scenarios, scenario{name: "ModelChangeDetected", run: modelChange})
}

func modelChange(t *testing.T, g *Gateway) {
	c := g.Client(KeyA)
	for _, m := range []string{"small-1-2025-01-01", "small-1-2025-01-01", "small-1-2026-06-01"} {
		_, err := c.Chat.Completions.New(ctx(t), chatParams("small", "hi"), option.WithHeader("x-fake-fault", "model="+m))
		require.NoError(t, err)
	}
	assert.Equal(t, 1.0, g.Eventually("tollgate_model_change_total", map[string]string{"alias": "small"}, func(v float64) bool { return v >= 1 }),
		"a silent model update at the provider is counted once")
}

package eval_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/eval"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

const smokeSet = "../../evals/smoke.yaml"

// startFake starts an echo-mode fake provider and returns its /v1 base URL.
func startFake(t *testing.T, opts fakeprovider.Options) (*fakeprovider.Provider, string) {
	t.Helper()
	if opts.ReplyMode == "" && opts.Reply == "" {
		opts.ReplyMode = fakeprovider.ReplyModeEcho
	}
	p, base := fakeprovider.StartTest(t, opts)
	return p, base + "/v1"
}

// testJudge is an OpenAI-compatible judge that scores deterministically:
// the share of the expected answer's words found in the candidate (1 when
// there is no expected answer and the candidate is non-empty).
type testJudge struct {
	mu       sync.Mutex
	requests []map[string]any
	reply    string // if set, returned verbatim instead of a verdict
}

func (j *testJudge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	var raw map[string]any
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	if err := json.Unmarshal(body.Bytes(), &req); err != nil || len(req.Messages) != 2 || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, "bad judge request", http.StatusBadRequest)
		return
	}
	_ = json.Unmarshal(body.Bytes(), &raw)
	j.mu.Lock()
	j.requests = append(j.requests, raw)
	fixed := j.reply
	j.mu.Unlock()
	var in eval.JudgeInput
	if err := json.Unmarshal([]byte(req.Messages[1].Content), &in); err != nil {
		http.Error(w, "judge input is not JSON", http.StatusBadRequest)
		return
	}
	content := fixed
	if content == "" {
		v, _ := json.Marshal(eval.JudgeVerdict{Score: overlap(in.Expected, in.Candidate), Reason: "word overlap"})
		content = string(v)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "judge-1", "object": "chat.completion", "created": 1, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": content}}},
		"usage": map[string]any{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
	})
}

func overlap(expected, candidate string) float64 {
	want := strings.Fields(strings.ToLower(expected))
	if len(want) == 0 {
		if strings.TrimSpace(candidate) == "" {
			return 0
		}
		return 1
	}
	have := map[string]bool{}
	for _, w := range strings.Fields(strings.ToLower(candidate)) {
		have[w] = true
	}
	n := 0
	for _, w := range want {
		if have[w] {
			n++
		}
	}
	return float64(n) / float64(len(want))
}

func startJudge(t *testing.T) (*testJudge, string) {
	t.Helper()
	j := &testJudge{}
	srv := httptest.NewServer(j)
	t.Cleanup(srv.Close)
	return j, srv.URL + "/v1"
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRunGatesOnDegradedProvider(t *testing.T) {
	fake, base := startFake(t, fakeprovider.Options{})
	judge, judgeURL := startJudge(t)
	dir := t.TempDir()
	baseline := filepath.Join(dir, "baseline.json")

	opts := eval.Options{
		SetPath: smokeSet, BaseURL: base, APIKey: "k", Model: "gpt-4o-mini",
		JudgeModel: "judge-1", JudgeBaseURL: judgeURL,
		BaselinePath: baseline, WriteBaseline: true, MaxRetries: -1,
	}
	var out bytes.Buffer
	rep, err := eval.Run(ctxT(t), opts, &out)
	require.NoError(t, err)
	assert.False(t, rep.Regression)
	assert.Equal(t, "smoke", rep.Set)
	assert.Equal(t, 4, rep.Passed)
	assert.InDelta(t, 1.0, rep.MeanScore, 1e-9)
	assert.Equal(t, map[string]int{"gpt-4o-mini@fp_fake": 4}, rep.ResponseModels)
	require.FileExists(t, baseline)
	assert.Equal(t, 4, fake.Calls())

	// The judge is called for the two cases with expected/criteria, at
	// temperature 0, asking for a JSON object.
	judge.mu.Lock()
	require.Len(t, judge.requests, 2)
	for _, r := range judge.requests {
		assert.Equal(t, 0.0, r["temperature"])
		assert.Equal(t, map[string]any{"type": "json_object"}, r["response_format"])
		assert.Equal(t, "judge-1", r["model"])
	}
	judge.mu.Unlock()
	// Candidate requests are deterministic too.
	for _, r := range fake.Requests() {
		var body map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &body))
		assert.Equal(t, 0.0, body["temperature"])
	}

	tests := []struct {
		name       string
		headers    map[string]string
		regression bool
		meanBelow  float64
	}{
		{name: "same provider passes", regression: false},
		{name: "degraded answers regress", headers: map[string]string{"x-fake-fault": "degraded"}, regression: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			o.WriteBaseline = false
			o.Headers = tt.headers
			o.OutPath = filepath.Join(t.TempDir(), "report.json")
			var out bytes.Buffer
			rep, err := eval.Run(ctxT(t), o, &out)
			require.NoError(t, err)
			assert.Equal(t, tt.regression, rep.Regression, out.String())
			require.NotNil(t, rep.Baseline)
			assert.InDelta(t, 1.0, rep.Baseline.MeanScore, 1e-9)
			written, err := eval.ReadReport(o.OutPath)
			require.NoError(t, err)
			assert.Equal(t, rep.Regression, written.Regression)
			assert.Equal(t, rep.MeanScore, written.MeanScore)
			if tt.regression {
				assert.Less(t, rep.MeanScore, 0.5)
				assert.ElementsMatch(t, []string{"capital-france/0:contains", "json-answer/0:json_schema", "iso-date/0:regex", "exact-ack/0:exact"}, rep.Baseline.NewlyFailing)
				assert.Contains(t, out.String(), "REGRESSION")
			} else {
				assert.Empty(t, rep.Baseline.NewlyFailing)
				assert.Contains(t, out.String(), "OK: no regression")
			}
		})
	}
}

func TestRunThreshold(t *testing.T) {
	_, base := startFake(t, fakeprovider.Options{})
	_, judgeURL := startJudge(t)
	dir := t.TempDir()
	// A judged-only set: the judge's word overlap gives graded scores.
	set := &eval.Set{Name: "graded", Cases: []eval.Case{
		{ID: "a", Prompt: "one two three four five six seven eight nine ten", Expected: "one two three four five six seven eight nine ten"},
		{ID: "b", Prompt: "alpha beta", Expected: "alpha beta"},
	}}
	baseline := filepath.Join(dir, "b.json")
	opts := eval.Options{Set: set, BaseURL: base, Model: "m", JudgeModel: "j", JudgeBaseURL: judgeURL, BaselinePath: baseline, WriteBaseline: true, MaxRetries: -1}
	_, err := eval.Run(ctxT(t), opts, &bytes.Buffer{})
	require.NoError(t, err)

	tests := []struct {
		name      string
		prompt    string // new prompt for case a, changing its overlap score
		threshold float64
		want      bool
	}{
		// Case a scores 0.9 -> mean 0.95 -> drop 0.05: at the threshold.
		{name: "drop equal to threshold passes", prompt: "one two three four five six seven eight nine", threshold: 0.05, want: false},
		// Case a scores 0.8 -> mean 0.9 -> drop 0.1.
		{name: "drop above threshold fails", prompt: "one two three four five six seven eight", threshold: 0.05, want: true},
		{name: "larger threshold tolerates it", prompt: "one two three four five six seven eight", threshold: 0.2, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := *set
			s.Cases = append([]eval.Case(nil), set.Cases...)
			s.Cases[0].Prompt = tt.prompt
			o := opts
			o.Set, o.WriteBaseline, o.Threshold = &s, false, tt.threshold
			rep, err := eval.Run(ctxT(t), o, &bytes.Buffer{})
			require.NoError(t, err)
			assert.Equal(t, tt.want, rep.Regression, rep.Reasons)
		})
	}
}

func TestRunWithoutBaselineFailsOnFailingCase(t *testing.T) {
	_, base := startFake(t, fakeprovider.Options{Fault: "degraded"})
	rep, err := eval.Run(ctxT(t), eval.Options{SetPath: smokeSet, BaseURL: base, Model: "m", MaxRetries: -1}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, rep.Regression)
	assert.Equal(t, 4, rep.Failed)
	assert.Zero(t, rep.MeanScore)
}

func TestRunErrors(t *testing.T) {
	_, base := startFake(t, fakeprovider.Options{Fault: "500"})
	judged := &eval.Set{Name: "j", Cases: []eval.Case{{ID: "a", Prompt: "x", Expected: "x"}}}
	dir := t.TempDir()
	otherBaseline := filepath.Join(dir, "support.json")
	require.NoError(t, os.WriteFile(otherBaseline, []byte(`{"set": "support", "mean_score": 1}`), 0o600))
	tests := []struct {
		name string
		opts eval.Options
		want string
	}{
		{name: "no set", opts: eval.Options{BaseURL: base, Model: "m"}, want: "golden set is required"},
		{name: "no model", opts: eval.Options{SetPath: smokeSet, BaseURL: base}, want: "model is required"},
		{name: "judged case without judge", opts: eval.Options{Set: judged, BaseURL: base, Model: "m"}, want: "needs a judge model"},
		{name: "missing baseline", opts: eval.Options{SetPath: smokeSet, BaseURL: base, Model: "m", BaselinePath: filepath.Join(dir, "nope.json")}, want: "read baseline"},
		{name: "baseline of another set", opts: eval.Options{SetPath: smokeSet, BaseURL: base, Model: "m", BaselinePath: otherBaseline}, want: `is for set "support", not "smoke"`},
		{name: "baseline from errored run", opts: eval.Options{SetPath: smokeSet, BaseURL: base, Model: "m", MaxRetries: -1, BaselinePath: filepath.Join(dir, "b.json"), WriteBaseline: true}, want: "not writing a baseline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := eval.Run(ctxT(t), tt.opts, &bytes.Buffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	assert.NoFileExists(t, filepath.Join(dir, "b.json"))
}

func TestRunProviderErrorIsAFailure(t *testing.T) {
	_, base := startFake(t, fakeprovider.Options{Fault: "503"})
	rep, err := eval.Run(ctxT(t), eval.Options{SetPath: smokeSet, BaseURL: base, Model: "m", MaxRetries: -1}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, rep.Regression)
	assert.Equal(t, 4, rep.Errored)
	for _, c := range rep.Cases {
		assert.NotEmpty(t, c.Error)
		for _, ch := range c.Checks {
			assert.False(t, ch.Pass)
		}
	}
}

func TestRunJudgeFailureFailsClosed(t *testing.T) {
	_, base := startFake(t, fakeprovider.Options{})
	judge, judgeURL := startJudge(t)
	judge.reply = "I think it is fine."
	set := &eval.Set{Name: "j", Cases: []eval.Case{{ID: "a", Prompt: "x", Expected: "x"}}}
	rep, err := eval.Run(ctxT(t), eval.Options{Set: set, BaseURL: base, Model: "m", JudgeModel: "j", JudgeBaseURL: judgeURL, MaxRetries: -1}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.True(t, rep.Regression)
	assert.Equal(t, 1, rep.Errored)
	assert.Contains(t, rep.Cases[0].Error, "no JSON object")
}

func TestMain_ExitCodesAndFiles(t *testing.T) {
	_, base := startFake(t, fakeprovider.Options{APIKey: "sk-eval"})
	_, judgeURL := startJudge(t)
	t.Setenv("EVAL_TEST_KEY", "sk-eval")
	dir := t.TempDir()
	baseline := filepath.Join(dir, "baseline.json")
	metrics := filepath.Join(dir, "eval.prom")
	common := []string{"--set", smokeSet, "--base-url", base, "--api-key-env", "EVAL_TEST_KEY", "--alias", "gpt-4o-mini",
		"--judge-model", "judge", "--judge-base-url", judgeURL, "--baseline", baseline, "--max-retries", "0"}

	tests := []struct {
		name    string
		args    []string
		want    int
		metrics []string // lines expected in the metrics file
	}{
		{name: "write baseline", args: []string{"--write-baseline"}, want: eval.ExitOK},
		{name: "compare passes", args: []string{"--metrics-out", metrics}, want: eval.ExitOK, metrics: []string{
			`tollgate_eval_score{model="gpt-4o-mini",set="smoke"} 1`,
			`tollgate_eval_regression{model="gpt-4o-mini",set="smoke"} 0`,
			`tollgate_eval_cases{model="gpt-4o-mini",result="pass",set="smoke"} 4`,
			`tollgate_eval_baseline_score{model="gpt-4o-mini",set="smoke"} 1`,
		}},
		{name: "degraded regresses", args: []string{"--metrics-out", metrics, "--header", "x-fake-fault: degraded"}, want: eval.ExitRegression, metrics: []string{
			// Deterministic: the judge's word overlap with DegradedReply.
			`tollgate_eval_score{model="gpt-4o-mini",set="smoke"} 0.1042`,
			`tollgate_eval_regression{model="gpt-4o-mini",set="smoke"} 1`,
			`tollgate_eval_cases{model="gpt-4o-mini",result="fail",set="smoke"} 4`,
		}},
		{name: "bad flag", args: []string{"--nope"}, want: eval.ExitError},
		{name: "bad header", args: []string{"--header", "novalue"}, want: eval.ExitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := eval.Main(ctxT(t), append(append([]string(nil), common...), tt.args...), &out, &errOut)
			assert.Equal(t, tt.want, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			if len(tt.metrics) > 0 {
				data, err := os.ReadFile(metrics)
				require.NoError(t, err)
				lines := strings.Split(string(data), "\n")
				for _, m := range tt.metrics {
					assert.Contains(t, lines, m)
				}
			}
		})
	}

	t.Run("wrong api key is a failing run", func(t *testing.T) {
		t.Setenv("EVAL_TEST_KEY", "wrong")
		var out, errOut bytes.Buffer
		assert.Equal(t, eval.ExitRegression, eval.Main(ctxT(t), common, &out, &errOut))
	})
}

func TestRunJSONLSet(t *testing.T) {
	_, base := startFake(t, fakeprovider.Options{})
	_, judgeURL := startJudge(t)
	rep, err := eval.Run(ctxT(t), eval.Options{SetPath: "../../evals/support.jsonl", BaseURL: base, Model: "m", JudgeModel: "j", JudgeBaseURL: judgeURL, MaxRetries: -1}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "support", rep.Set)
	assert.False(t, rep.Regression, rep.Reasons)
	assert.Equal(t, 3, rep.Passed)
}

package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Defaults for Options fields left zero.
const (
	DefaultThreshold   = 0.05
	DefaultPassScore   = 0.5
	DefaultConcurrency = 4
	DefaultTimeout     = 60 * time.Second
)

// Options configures one Run.
type Options struct {
	// SetPath is the golden set file; Set, when non-nil, is used instead.
	SetPath string
	Set     *Set
	// BaseURL is the OpenAI-compatible base URL including the version
	// prefix (e.g. http://gateway:10000/v1 or https://api.openai.com/v1).
	BaseURL string
	APIKey  string
	// Model is the model or Tollgate alias to evaluate.
	Model string
	// Headers are added to every candidate request (e.g. a tenant header).
	Headers map[string]string
	// JudgeModel enables the LLM-as-judge for cases with expected or
	// criteria; "" disables it (such cases then need checks).
	JudgeModel   string
	JudgeBaseURL string // default BaseURL
	JudgeAPIKey  string // default APIKey
	// BaselinePath is a Report JSON to compare against ("" = none).
	BaselinePath string
	// WriteBaseline writes this run's report to BaselinePath instead of
	// comparing against it.
	WriteBaseline bool
	// OutPath receives the JSON report ("" = none).
	OutPath string
	// MetricsOutPath receives tollgate_eval_* gauges in node_exporter
	// textfile format ("" = none).
	MetricsOutPath string
	// Threshold is the largest tolerated drop of the mean score against the
	// baseline (0 = DefaultThreshold).
	Threshold float64
	// PassScore is the judge score at or above which a judged case passes
	// (0 = DefaultPassScore).
	PassScore   float64
	Concurrency int           // parallel cases (0 = DefaultConcurrency)
	Timeout     time.Duration // per request (0 = DefaultTimeout)
	MaxRetries  int           // SDK retries per request: 0 = the SDK default (2), negative = none
	HTTPClient  *http.Client  // nil = http.DefaultClient
	Now         func() time.Time
}

// Report is the result of a Run, also the baseline file format.
type Report struct {
	Set        string       `json:"set"`
	Model      string       `json:"model"`
	JudgeModel string       `json:"judge_model,omitempty"`
	StartedAt  time.Time    `json:"started_at"`
	DurationMS float64      `json:"duration_ms"`
	MeanScore  float64      `json:"mean_score"`
	Passed     int          `json:"passed"`
	Failed     int          `json:"failed"`
	Errored    int          `json:"errored"`
	Cases      []CaseResult `json:"cases"`
	// ResponseModels counts the model/system_fingerprint pairs the endpoint
	// reported ("model" or "model@fingerprint"): a change here with no
	// config change is a silent model update.
	ResponseModels map[string]int `json:"response_models,omitempty"`
	Baseline       *Comparison    `json:"baseline,omitempty"`
	// Regression is the gate: true makes Main exit 1.
	Regression bool     `json:"regression"`
	Reasons    []string `json:"reasons,omitempty"`
}

// CaseResult is one case's outcome.
type CaseResult struct {
	ID            string        `json:"id"`
	Reply         string        `json:"reply"`
	ResponseModel string        `json:"response_model,omitempty"`
	Fingerprint   string        `json:"system_fingerprint,omitempty"`
	Checks        []CheckResult `json:"checks,omitempty"`
	JudgeScore    *float64      `json:"judge_score,omitempty"`
	JudgeReason   string        `json:"judge_reason,omitempty"`
	Score         float64       `json:"score"`
	Pass          bool          `json:"pass"`
	Error         string        `json:"error,omitempty"`
	LatencyMS     float64       `json:"latency_ms"`
}

// CheckResult is one deterministic check's outcome.
type CheckResult struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail,omitempty"`
}

// Comparison is the difference from the baseline.
type Comparison struct {
	Path      string  `json:"path"`
	MeanScore float64 `json:"mean_score"`
	Delta     float64 `json:"delta"`
	Threshold float64 `json:"threshold"`
	// NewlyFailing lists "case/check" that passed in the baseline.
	NewlyFailing []string `json:"newly_failing,omitempty"`
	// NewCases and MissingCases are case IDs only in this run or only in
	// the baseline (not a regression by themselves).
	NewCases     []string `json:"new_cases,omitempty"`
	MissingCases []string `json:"missing_cases,omitempty"`
}

func (o *Options) defaults() {
	if o.Threshold == 0 {
		o.Threshold = DefaultThreshold
	}
	if o.PassScore == 0 {
		o.PassScore = DefaultPassScore
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.JudgeBaseURL == "" {
		o.JudgeBaseURL = o.BaseURL
	}
	if o.JudgeAPIKey == "" {
		o.JudgeAPIKey = o.APIKey
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func (o *Options) validate(s *Set) error {
	var errs []error
	if o.BaseURL == "" {
		errs = append(errs, errors.New("base URL is required"))
	}
	if o.Model == "" {
		errs = append(errs, errors.New("model is required"))
	}
	if o.Threshold < 0 || o.Threshold > 1 {
		errs = append(errs, fmt.Errorf("threshold %v outside [0,1]", o.Threshold))
	}
	if o.PassScore < 0 || o.PassScore > 1 {
		errs = append(errs, fmt.Errorf("pass score %v outside [0,1]", o.PassScore))
	}
	if o.WriteBaseline && o.BaselinePath == "" {
		errs = append(errs, errors.New("write-baseline needs a baseline path"))
	}
	if o.JudgeModel == "" {
		for _, c := range s.Cases {
			if len(c.Checks) == 0 {
				errs = append(errs, fmt.Errorf("case %q has only expected/criteria and needs a judge model", c.ID))
			}
		}
	}
	return errors.Join(errs...)
}

func (o *Options) client(baseURL, apiKey string, extra map[string]string) openai.Client {
	opts := []option.RequestOption{
		option.WithBaseURL(strings.TrimSuffix(baseURL, "/") + "/"),
		option.WithAPIKey(apiKey),
		option.WithRequestTimeout(o.Timeout),
	}
	if o.MaxRetries != 0 {
		opts = append(opts, option.WithMaxRetries(max(o.MaxRetries, 0)))
	}
	if o.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(o.HTTPClient))
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		opts = append(opts, option.WithHeader(k, extra[k]))
	}
	return openai.NewClient(opts...)
}

// Run evaluates the golden set, compares with the baseline, prints a table
// to stdout and writes the report, baseline and metrics files asked for.
// An error means the evaluation could not be carried out (bad options or
// set, unreadable baseline, unwritable output); a regression is reported
// in Report.Regression with a nil error.
func Run(ctx context.Context, opts Options, stdout io.Writer) (Report, error) {
	opts.defaults()
	set := opts.Set
	if set == nil {
		if opts.SetPath == "" {
			return Report{}, errors.New("eval: a golden set is required")
		}
		var err error
		if set, err = LoadSet(opts.SetPath); err != nil {
			return Report{}, err
		}
	} else if err := set.compile(); err != nil {
		return Report{}, err
	}
	if err := opts.validate(set); err != nil {
		return Report{}, fmt.Errorf("eval: %w", err)
	}
	var baseline *Report
	if opts.BaselinePath != "" && !opts.WriteBaseline {
		b, err := ReadReport(opts.BaselinePath)
		if err != nil {
			return Report{}, err
		}
		if b.Set != set.Name {
			return Report{}, fmt.Errorf("eval: baseline %s is for set %q, not %q", opts.BaselinePath, b.Set, set.Name)
		}
		baseline = &b
	}

	cand := opts.client(opts.BaseURL, opts.APIKey, opts.Headers)
	var jd *judge
	if opts.JudgeModel != "" {
		jd = &judge{client: opts.client(opts.JudgeBaseURL, opts.JudgeAPIKey, nil), model: opts.JudgeModel}
	}

	rep := Report{Set: set.Name, Model: opts.Model, JudgeModel: opts.JudgeModel, StartedAt: opts.Now().UTC()}
	rep.Cases = make([]CaseResult, len(set.Cases))
	sem := make(chan struct{}, opts.Concurrency)
	var wg sync.WaitGroup
	for i := range set.Cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				rep.Cases[i] = CaseResult{ID: set.Cases[i].ID, Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			rep.Cases[i] = runCase(ctx, &opts, cand, jd, &set.Cases[i])
		}()
	}
	wg.Wait()
	rep.DurationMS = float64(opts.Now().Sub(rep.StartedAt).Microseconds()) / 1000
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("eval: %w", err)
	}
	rep.summarise()

	switch {
	case opts.WriteBaseline:
		if rep.Errored > 0 {
			return rep, fmt.Errorf("eval: %d case(s) errored; not writing a baseline", rep.Errored)
		}
		if err := writeJSON(opts.BaselinePath, rep); err != nil {
			return rep, err
		}
	case baseline != nil:
		rep.compare(baseline, opts.BaselinePath, opts.Threshold)
	default:
		// No baseline: the gate is absolute, every case must pass.
		if n := rep.Failed + rep.Errored; n > 0 {
			rep.Regression = true
			rep.Reasons = append(rep.Reasons, fmt.Sprintf("%d of %d case(s) failed (no baseline)", n, len(rep.Cases)))
		}
	}

	PrintTable(stdout, rep)
	var errs []error
	if opts.OutPath != "" {
		errs = append(errs, writeJSON(opts.OutPath, rep))
	}
	if opts.MetricsOutPath != "" {
		errs = append(errs, WriteMetrics(opts.MetricsOutPath, rep))
	}
	return rep, errors.Join(errs...)
}

func toSDKMessages(msgs []Message) []openai.ChatCompletionMessageParamUnion {
	out := make([]openai.ChatCompletionMessageParamUnion, 0, len(msgs))
	for _, m := range msgs {
		switch m.Role {
		case "system":
			out = append(out, openai.SystemMessage(m.Content))
		case "developer":
			out = append(out, openai.DeveloperMessage(m.Content))
		case "assistant":
			out = append(out, openai.AssistantMessage(m.Content))
		default:
			out = append(out, openai.UserMessage(m.Content))
		}
	}
	return out
}

func runCase(ctx context.Context, o *Options, cand openai.Client, jd *judge, c *Case) CaseResult {
	res := CaseResult{ID: c.ID}
	msgs := c.Messages
	if c.Prompt != "" {
		msgs = []Message{{Role: "user", Content: c.Prompt}}
	}
	params := openai.ChatCompletionNewParams{
		Model:       o.Model,
		Messages:    toSDKMessages(msgs),
		Temperature: openai.Float(0),
	}
	if c.MaxTokens > 0 {
		params.MaxCompletionTokens = openai.Int(c.MaxTokens)
	}
	start := o.Now()
	resp, err := cand.Chat.Completions.New(ctx, params)
	res.LatencyMS = float64(o.Now().Sub(start).Microseconds()) / 1000
	if err == nil && len(resp.Choices) == 0 {
		err = errors.New("reply has no choices")
	}
	if err != nil {
		res.Error = err.Error()
		for i := range c.Checks {
			res.Checks = append(res.Checks, CheckResult{Name: c.Checks[i].Name(i), Detail: "not run: request failed"})
		}
		return res
	}
	res.Reply = resp.Choices[0].Message.Content
	res.ResponseModel, res.Fingerprint = resp.Model, resp.SystemFingerprint //nolint:staticcheck // still sent by OpenAI; the model-change detector reads it

	var sum float64
	var parts int
	res.Pass = true
	for i := range c.Checks {
		cr := CheckResult{Name: c.Checks[i].Name(i), Pass: true}
		if err := c.Checks[i].Eval(res.Reply); err != nil {
			cr.Pass, cr.Detail, res.Pass = false, err.Error(), false
		} else {
			sum++
		}
		parts++
		res.Checks = append(res.Checks, cr)
	}
	if jd != nil && (c.Expected != "" || c.Criteria != "") {
		v, err := jd.score(ctx, c, msgs, res.Reply)
		if err != nil {
			// A judge that cannot score is not a pass: fail closed.
			res.Error, res.Pass, res.Score = err.Error(), false, 0
			return res
		}
		res.JudgeScore, res.JudgeReason = &v.Score, v.Reason
		sum += v.Score
		parts++
		if v.Score < o.PassScore {
			res.Pass = false
		}
	}
	if parts > 0 {
		res.Score = sum / float64(parts)
	}
	return res
}

func (r *Report) summarise() {
	var sum float64
	r.ResponseModels = map[string]int{}
	for _, c := range r.Cases {
		sum += c.Score
		switch {
		case c.Error != "":
			r.Errored++
		case c.Pass:
			r.Passed++
		default:
			r.Failed++
		}
		if c.ResponseModel != "" {
			k := c.ResponseModel
			if c.Fingerprint != "" {
				k += "@" + c.Fingerprint
			}
			r.ResponseModels[k]++
		}
	}
	if len(r.Cases) > 0 {
		r.MeanScore = round4(sum / float64(len(r.Cases)))
	}
}

func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }

// compare fills r.Baseline and decides the gate against b.
func (r *Report) compare(b *Report, path string, threshold float64) {
	cmp := &Comparison{Path: path, MeanScore: b.MeanScore, Delta: round4(r.MeanScore - b.MeanScore), Threshold: threshold}
	old := make(map[string]CaseResult, len(b.Cases))
	for _, c := range b.Cases {
		old[c.ID] = c
	}
	for _, c := range r.Cases {
		oc, ok := old[c.ID]
		if !ok {
			cmp.NewCases = append(cmp.NewCases, c.ID)
			continue
		}
		delete(old, c.ID)
		now := make(map[string]bool, len(c.Checks))
		for _, ch := range c.Checks {
			now[ch.Name] = ch.Pass
		}
		for _, ch := range oc.Checks {
			if pass, ok := now[ch.Name]; ch.Pass && ok && !pass {
				cmp.NewlyFailing = append(cmp.NewlyFailing, c.ID+"/"+ch.Name)
			}
		}
	}
	for id := range old {
		cmp.MissingCases = append(cmp.MissingCases, id)
	}
	sort.Strings(cmp.MissingCases)
	r.Baseline = cmp
	// Compare with a small epsilon so a drop of exactly the threshold passes.
	if -cmp.Delta > threshold+1e-9 {
		r.Regression = true
		r.Reasons = append(r.Reasons, fmt.Sprintf("mean score %.4f dropped %.4f from baseline %.4f (threshold %.4f)", r.MeanScore, -cmp.Delta, b.MeanScore, threshold))
	}
	if len(cmp.NewlyFailing) > 0 {
		r.Regression = true
		r.Reasons = append(r.Reasons, fmt.Sprintf("%d deterministic check(s) passing in the baseline now fail: %s", len(cmp.NewlyFailing), strings.Join(cmp.NewlyFailing, ", ")))
	}
}

// PrintTable writes a human-readable summary of r.
func PrintTable(w io.Writer, r Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CASE\tSCORE\tCHECKS\tJUDGE\tRESULT\tDETAIL\n")
	for _, c := range r.Cases {
		passed := 0
		var detail []string
		for _, ch := range c.Checks {
			if ch.Pass {
				passed++
			} else if ch.Detail != "" {
				detail = append(detail, ch.Name+": "+ch.Detail)
			}
		}
		judge := "-"
		if c.JudgeScore != nil {
			judge = fmt.Sprintf("%.2f", *c.JudgeScore)
		}
		result := "PASS"
		switch {
		case c.Error != "":
			result, detail = "ERROR", []string{c.Error}
		case !c.Pass:
			result = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%d/%d\t%s\t%s\t%s\n", c.ID, c.Score, passed, len(c.Checks), judge, result, oneLine(strings.Join(detail, "; "), 100))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nset %s, model %s: mean score %.4f, %d passed, %d failed, %d errored\n", r.Set, r.Model, r.MeanScore, r.Passed, r.Failed, r.Errored)
	if b := r.Baseline; b != nil {
		fmt.Fprintf(w, "baseline %s: mean %.4f, delta %+.4f (threshold %.4f)\n", b.Path, b.MeanScore, b.Delta, b.Threshold)
	}
	if r.Regression {
		fmt.Fprintf(w, "REGRESSION: %s\n", strings.Join(r.Reasons, "; "))
	} else {
		fmt.Fprintln(w, "OK: no regression")
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// ReadReport reads a Report (e.g. a baseline) from a JSON file.
func ReadReport(path string) (Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Report{}, fmt.Errorf("read baseline: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return Report{}, fmt.Errorf("baseline %s: %w", path, err)
	}
	return r, nil
}

// writeJSON writes v atomically (temp file and rename).
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".eval-*.json")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

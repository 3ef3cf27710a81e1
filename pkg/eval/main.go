package eval

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes of Main.
const (
	ExitOK         = 0 // no regression
	ExitRegression = 1 // regression against the baseline, or failing cases without one
	ExitError      = 2 // bad flags, unreadable set or baseline, unwritable output
)

// headerFlags collects repeated --header "Name: value" flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return fmt.Sprint(map[string]string(h)) }

func (h headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok {
		name, value, ok = strings.Cut(v, "=")
	}
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("header %q: want Name: value", v)
	}
	h[name] = strings.TrimSpace(value)
	return nil
}

// Main is `tollgate eval`: it parses args (without the program and
// subcommand names), runs the evaluation and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tollgate eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o           Options
		keyEnv      string
		judgeKeyEnv string
		headers     = headerFlags{}
		maxRetries  int
	)
	fs.StringVar(&o.SetPath, "set", "", "golden set file (.yaml, .yml, .json or .jsonl)")
	fs.StringVar(&o.BaseURL, "base-url", "", "OpenAI-compatible base URL incl. /v1 (the Tollgate gateway or a provider)")
	fs.StringVar(&keyEnv, "api-key-env", "OPENAI_API_KEY", "environment variable holding the API key (Tollgate key for the gateway)")
	fs.StringVar(&o.Model, "model", "", "model or Tollgate alias to evaluate")
	fs.StringVar(&o.Model, "alias", "", "same as --model")
	fs.StringVar(&o.JudgeModel, "judge-model", "", "judge model for expected/criteria cases (empty: no judge)")
	fs.StringVar(&o.JudgeBaseURL, "judge-base-url", "", "judge base URL (default --base-url)")
	fs.StringVar(&judgeKeyEnv, "judge-api-key-env", "", "environment variable holding the judge's API key (default --api-key-env)")
	fs.StringVar(&o.BaselinePath, "baseline", "", "baseline report (JSON) to compare against")
	fs.BoolVar(&o.WriteBaseline, "write-baseline", false, "write this run as the new --baseline instead of comparing")
	fs.StringVar(&o.OutPath, "out", "", "write the JSON report here")
	fs.StringVar(&o.MetricsOutPath, "metrics-out", "", "write tollgate_eval_* gauges here (node_exporter textfile format; name it *.prom)")
	fs.Float64Var(&o.Threshold, "threshold", DefaultThreshold, "largest tolerated drop of the mean score against the baseline")
	fs.Float64Var(&o.PassScore, "pass-score", DefaultPassScore, "judge score at or above which a case passes")
	fs.IntVar(&o.Concurrency, "concurrency", DefaultConcurrency, "cases run in parallel")
	fs.DurationVar(&o.Timeout, "timeout", DefaultTimeout, "per-request timeout")
	fs.IntVar(&maxRetries, "max-retries", 2, "SDK retries per request")
	fs.Var(headers, "header", `extra request header "Name: value" for the evaluated endpoint (repeatable)`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tollgate eval: unexpected arguments %q\n", fs.Args())
		return ExitError
	}
	if o.Threshold == 0 {
		// Options treats 0 as "default"; a user asking for 0 wants any drop
		// to count.
		o.Threshold = 1e-9
	}
	if maxRetries == 0 {
		maxRetries = -1
	}
	o.MaxRetries = maxRetries
	if judgeKeyEnv == "" {
		judgeKeyEnv = keyEnv
	}
	if keyEnv != "" {
		o.APIKey = os.Getenv(keyEnv)
	}
	o.JudgeAPIKey = os.Getenv(judgeKeyEnv)
	if len(headers) > 0 {
		o.Headers = headers
	}
	rep, err := Run(ctx, o, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "tollgate eval: %v\n", err)
		return ExitError
	}
	if rep.Regression {
		return ExitRegression
	}
	return ExitOK
}

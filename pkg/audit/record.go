package audit

import "time"

// Record is what the audit trail keeps about one request. It never holds raw
// prompt text or the values that guardrails found.
type Record struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	TraceID   string    `json:"trace_id,omitempty"`
	Tenant    string    `json:"tenant,omitempty"`
	KeyID     string    `json:"key_id,omitempty"`
	// Prompt is the registry prompt used, "name@version"; empty if none.
	Prompt   string `json:"prompt,omitempty"`
	Alias    string `json:"alias,omitempty"`
	Tier     string `json:"tier,omitempty"`
	Provider string `json:"provider,omitempty"`
	Model    string `json:"model,omitempty"`

	TokensIn     int64   `json:"tokens_in"`
	TokensOut    int64   `json:"tokens_out"`
	TokensCached int64   `json:"tokens_cached"`
	CostUSD      float64 `json:"cost_usd"`

	// Cache is the response-cache result: "hit", "semantic_hit", "miss",
	// "bypass" or empty when the cache is off.
	Cache    string    `json:"cache,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
	// Outcome is how the request ended: "ok", "blocked", "budget_exceeded",
	// "invalid_request", "upstream_error", ...
	Outcome string `json:"outcome"`
	Status  int    `json:"status,omitempty"`

	// RedactedText is the prompt after redaction; written only when
	// Options.RedactedText is true, dropped otherwise.
	RedactedText string `json:"redacted_text,omitempty"`
	// Eval is the result of an evaluation Tollgate ran itself (outcome
	// "eval"); nil on request records.
	Eval *EvalResult `json:"eval,omitempty"`
}

// EvalResult is what the audit trail keeps about one automatic eval run.
type EvalResult struct {
	Set     string `json:"set"`
	Trigger string `json:"trigger"` // model_change or prompt_change
	// Score is the run's mean score (0..1); Baseline the committed one it
	// was compared with (omitted without a baseline).
	Score      float64  `json:"score"`
	Baseline   *float64 `json:"baseline,omitempty"`
	Regression bool     `json:"regression"`
	Passed     int      `json:"passed"`
	Failed     int      `json:"failed"`
	Errored    int      `json:"errored"`
	// Error is why the run could not be carried out.
	Error string `json:"error,omitempty"`
}

// Finding is one guardrail finding: its type and where it was, never what.
type Finding struct {
	Type string `json:"type"`           // e.g. "email", "aws_access_key", "prompt_injection"
	Path string `json:"path,omitempty"` // request JSON path, e.g. "messages.2.content"
	// Start and End are byte offsets within the text at Path.
	Start int `json:"start"`
	End   int `json:"end"`
	// Action is what the guardrail did: "block", "redact", "log".
	Action string `json:"action,omitempty"`
}

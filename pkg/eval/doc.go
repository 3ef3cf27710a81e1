// Package eval runs golden sets against an OpenAI-compatible endpoint and
// gates on regressions; it is the library behind `tollgate eval`.
//
// A golden set (YAML or JSONL, see [LoadSet]) lists cases: an input (a prompt
// or chat messages), optional deterministic checks (exact, contains, regex,
// json_schema) and optional expected text / criteria scored by an
// LLM-as-judge. [Run] sends every case to one model or alias through the
// official OpenAI Go SDK (the Tollgate gateway or a provider directly),
// scores it, compares the result with a stored baseline ([Report] as JSON)
// and reports a regression when the mean score drops by more than the
// threshold or a deterministic check that passed in the baseline now fails.
// [Main] is the command-line front end; its exit code is 0 (no regression),
// 1 (regression or failing cases) or 2 (usage or setup error).
//
// With --metrics-out, Main writes tollgate_eval_* gauges in the node_exporter
// textfile format so Prometheus can alert on quality (see
// envoy/observability/alerts.yaml).
//
// [ModelTracker] detects silent model updates: it remembers, per alias, the
// model name and system_fingerprint the provider last returned and reports
// when they change.
//
// [Auto] runs golden sets in the background (Tollgate's eval.auto): one run
// at a time, at most one pending run per alias, and no run of an alias
// within a minimum interval of its last one. It keeps the same
// tollgate_eval_* gauges ([Gauges]) live on a Prometheus registry.
package eval

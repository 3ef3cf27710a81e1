// Package config is the tollgate.yaml schema: types, defaults, loading with
// strict field checking, and validation that reports every problem with its
// file and line.
//
// One file configures both `tollgate extproc` and `tollgate xds`. Unknown keys
// are errors, and so is a YAML boolean written for a string key
// (`allow_anonymous: false`). Load never returns a partially valid config:
// either every check passes or the caller gets a Problems error listing each
// failure.
//
// Load checks what the file says by itself. What needs the machine or the
// other packages (the guardrails, the price catalog, the ledger directory,
// environment variables) is checked by package preflight, which reports its
// problems at the same file:line through Config.Problem.
package config

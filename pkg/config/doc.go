// Package config is the tollgate.yaml schema: types, defaults, loading with
// strict field checking, and validation that reports every problem with its
// file and line.
//
// One file configures both `tollgate extproc` and `tollgate xds`. Unknown keys
// are errors. Load never returns a partially valid config: either every check
// passes or the caller gets a Problems error listing each failure.
package config

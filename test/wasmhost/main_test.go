package wasmhost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/test/wasmhost"
)

// moduleDir is the wasm/ Go module, relative to this package.
const moduleDir = "../../wasm"

// Set by TestMain: the module is compiled once per package run.
var (
	wasmBytes []byte
	cacheDir  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wasmhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := filepath.Join(dir, "tollgate-router.wasm")
	if err := wasmhost.Build(ctx, moduleDir, out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if wasmBytes, err = os.ReadFile(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cacheDir = filepath.Join(dir, "wazero-cache")
	return m.Run()
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newHost(t testing.TB, opts wasmhost.Options) *wasmhost.Host {
	t.Helper()
	ctx := testContext(t)
	if opts.CacheDir == "" && !opts.Interpreter {
		opts.CacheDir = cacheDir
	}
	h, err := wasmhost.New(ctx, wasmBytes, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

func newVM(t testing.TB, h *wasmhost.Host) *wasmhost.VM {
	t.Helper()
	vm, err := h.NewVM(testContext(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// caseFile mirrors wasm/testdata/cases.json (shared with the native tests in
// wasm/router).
type caseFile struct {
	Configs    map[string]json.RawMessage `json:"configs"`
	Cases      []routeCase                `json:"cases"`
	BadConfigs []struct {
		Name   string          `json:"name"`
		Config json.RawMessage `json:"config"`
	} `json:"bad_configs"`
}

type routeCase struct {
	Name       string            `json:"name"`
	Config     string            `json:"config"`
	Headers    [][2]string       `json:"headers"`
	Properties map[string]string `json:"properties"`
	Want       struct {
		Outcome string            `json:"outcome"`
		Status  uint32            `json:"status"`
		Code    string            `json:"code"`
		Canary  bool              `json:"canary"`
		Headers map[string]string `json:"headers"`
	} `json:"want"`
}

func loadCases(t testing.TB) caseFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(moduleDir, "testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf caseFile
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	return cf
}

// rawConfig: a JSON string in the case file is the configuration verbatim.
func rawConfig(raw json.RawMessage) []byte {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return raw
}

package envoy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"gopkg.in/yaml.v3"
	istiov1alpha1 "istio.io/api/extensions/v1alpha1"

	"github.com/tollgate-dev/tollgate/test/wasmhost"
)

const wasmTypeURL = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"

// wasmYAMLToJSON converts YAML to JSON for protojson (strict: unknown fields
// fail, Any types resolved from the linked Envoy protos).
func wasmYAMLToJSON(t *testing.T, data []byte) []byte {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal(data, &v))
	js, err := json.Marshal(v)
	require.NoError(t, err)
	return js
}

func wasmUnmarshal(t *testing.T, js []byte, m proto.Message) error {
	t.Helper()
	return protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(js, m)
}

// checkWasmFilter validates a Wasm filter config and returns its plugin
// configuration JSON.
func checkWasmFilter(t *testing.T, w *wasmfilterv3.Wasm) []byte {
	t.Helper()
	require.NoError(t, w.ValidateAll())
	cfg := w.GetConfig()
	require.NotNil(t, cfg)
	assert.Equal(t, "tollgate-router", cfg.GetName())
	assert.Equal(t, "tollgate-router", cfg.GetRootId())
	assert.Equal(t, wasmv3.FailurePolicy_FAIL_CLOSED, cfg.GetFailurePolicy(), "the router must fail closed")
	vm := cfg.GetVmConfig()
	require.NotNil(t, vm)
	assert.Equal(t, "envoy.wasm.runtime.v8", vm.GetRuntime())
	assert.True(t, strings.HasSuffix(vm.GetCode().GetLocal().GetFilename(), "/tollgate-router.wasm"))
	assert.NotEmpty(t, vm.GetEnvironmentVariables().GetKeyValues()["GOGC"], "GOGC for the Go runtime")
	var s wrapperspb.StringValue
	require.NoError(t, cfg.GetConfiguration().UnmarshalTo(&s), "configuration must be a StringValue holding JSON")
	return []byte(s.GetValue())
}

func TestWasmECDSConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("wasm", "tollgate-router-ecds.yaml"))
	require.NoError(t, err)
	var tec corev3.TypedExtensionConfig
	require.NoError(t, wasmUnmarshal(t, wasmYAMLToJSON(t, data), &tec))
	require.NoError(t, tec.ValidateAll())
	assert.Equal(t, "tollgate-router", tec.GetName())
	assert.Equal(t, wasmTypeURL, tec.GetTypedConfig().GetTypeUrl())
	var w wasmfilterv3.Wasm
	require.NoError(t, tec.GetTypedConfig().UnmarshalTo(&w))
	checkRouterAccepts(t, checkWasmFilter(t, &w))
}

func TestWasmStaticHTTPFilter(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("wasm", "http-filters-static.yaml"))
	require.NoError(t, err)
	var doc struct {
		HTTPFilters []json.RawMessage `json:"http_filters"`
	}
	require.NoError(t, json.Unmarshal(wasmYAMLToJSON(t, data), &doc))
	require.Len(t, doc.HTTPFilters, 1)
	var f hcmv3.HttpFilter
	require.NoError(t, wasmUnmarshal(t, doc.HTTPFilters[0], &f))
	require.NoError(t, f.ValidateAll())
	assert.Equal(t, wasmTypeURL, f.GetTypedConfig().GetTypeUrl())
	var w wasmfilterv3.Wasm
	require.NoError(t, f.GetTypedConfig().UnmarshalTo(&w))
	checkRouterAccepts(t, checkWasmFilter(t, &w))
}

func TestWasmECDSHTTPFilterReference(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("wasm", "http-filter-ecds.yaml"))
	require.NoError(t, err)
	var f hcmv3.HttpFilter
	require.NoError(t, wasmUnmarshal(t, wasmYAMLToJSON(t, data), &f))
	require.NoError(t, f.ValidateAll())
	cd := f.GetConfigDiscovery()
	require.NotNil(t, cd)
	assert.Equal(t, []string{wasmTypeURL}, cd.GetTypeUrls())
	assert.NotNil(t, cd.GetConfigSource().GetAds())
	assert.Nil(t, cd.GetDefaultConfig(), "no fallback config that could skip authentication")
}

// wasmPluginDoc is the Kubernetes envelope of a WasmPlugin.
type wasmPluginDoc struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
}

func parseWasmPlugin(t *testing.T, data []byte) (*istiov1alpha1.WasmPlugin, wasmPluginDoc, error) {
	t.Helper()
	var doc wasmPluginDoc
	dec := json.NewDecoder(strings.NewReader(string(wasmYAMLToJSON(t, data))))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&doc))
	var wp istiov1alpha1.WasmPlugin
	err := wasmUnmarshal(t, doc.Spec, &wp)
	return &wp, doc, err
}

func TestIstioWasmPlugin(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("istio", "wasmplugin.yaml"))
	require.NoError(t, err)
	wp, doc, err := parseWasmPlugin(t, data)
	require.NoError(t, err)
	assert.Equal(t, "extensions.istio.io/v1alpha1", doc.APIVersion)
	assert.Equal(t, "WasmPlugin", doc.Kind)
	assert.True(t, strings.HasPrefix(wp.GetUrl(), "oci://"), "url %q", wp.GetUrl())
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), wp.GetSha256())
	assert.Equal(t, istiov1alpha1.PluginPhase_AUTHN, wp.GetPhase())
	assert.Equal(t, istiov1alpha1.FailStrategy_FAIL_CLOSE, wp.GetFailStrategy())
	assert.Equal(t, istiov1alpha1.PluginType_HTTP, wp.GetType())
	assert.Equal(t, "tollgate-router", wp.GetPluginName())
	var gogc bool
	for _, e := range wp.GetVmConfig().GetEnv() {
		gogc = gogc || (e.GetName() == "GOGC" && e.GetValue() != "")
	}
	assert.True(t, gogc, "vmConfig.env must set GOGC")
	// Istio hands pluginConfig to the plugin as JSON.
	cfg, err := protojson.Marshal(wp.GetPluginConfig())
	require.NoError(t, err)
	checkRouterAccepts(t, cfg)
}

func TestIstioWasmPluginUnknownFieldFails(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("istio", "wasmplugin.yaml"))
	require.NoError(t, err)
	typo := strings.Replace(string(data), "failStrategy:", "failStrategey:", 1)
	require.NotEqual(t, string(data), typo)
	_, _, err = parseWasmPlugin(t, []byte(typo))
	require.Error(t, err)
}

func TestWasmEnvoyConfigUnknownFieldFails(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("wasm", "tollgate-router-ecds.yaml"))
	require.NoError(t, err)
	typo := strings.Replace(string(data), "failure_policy:", "failure_polcy:", 1)
	require.NotEqual(t, string(data), typo)
	var tec corev3.TypedExtensionConfig
	require.Error(t, wasmUnmarshal(t, wasmYAMLToJSON(t, []byte(typo)), &tec))
}

// checkRouterAccepts runs the plugin configuration through the router's own
// validation, in the compiled module: proxy_on_configure must return true.
func checkRouterAccepts(t *testing.T, pluginConfig []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	vm := routerVM(ctx, t)
	_, ok, err := vm.Configure(ctx, pluginConfig)
	require.NoError(t, err)
	assert.True(t, ok, "the router rejects this plugin configuration: %s\nlogs: %v", pluginConfig, vm.Logs())
	// And the check can fail: a broken copy is rejected.
	_, ok, err = vm.Configure(ctx, []byte(strings.Replace(string(pluginConfig), `"tiers"`, `"teirs"`, 1)))
	require.NoError(t, err)
	assert.False(t, ok, "a misspelt field must fail plugin start")
}

// routerVM builds the wasm module (go build cache makes repeats cheap) and
// starts one VM on wazero's interpreter (fast to compile; configure only).
func routerVM(ctx context.Context, t *testing.T) *wasmhost.VM {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tollgate-router.wasm")
	require.NoError(t, wasmhost.Build(ctx, filepath.Join("..", "wasm"), out))
	bin, err := os.ReadFile(out)
	require.NoError(t, err)
	h, err := wasmhost.New(ctx, bin, wasmhost.Options{Interpreter: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	vm, err := h.NewVM(ctx, nil)
	require.NoError(t, err)
	return vm
}

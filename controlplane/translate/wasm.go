package translate

import (
	"encoding/json"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-dev/tollgate/pkg/config"
)

// WasmPluginName is the ECDS name and the plugin, root and VM id of the
// tollgate-router wasm filter (as in envoy/wasm/tollgate-router-ecds.yaml).
const WasmPluginName = "tollgate-router"

// DefaultWasmTier is the tier given to keys (and anonymous access) that name
// none: the router requires one.
const DefaultWasmTier = "default"

// wasmGOGC keeps each VM's Go heap near twice its live size (see wasm/README.md).
const wasmGOGC = "50"

// wasmFilter is the proxy-wasm router config: a local .wasm file run by V8
// with its plugin configuration (API keys by SHA-256, anonymous access),
// failing closed: a VM that traps rejects traffic rather than letting
// unauthenticated requests through.
func (m *Model) wasmFilter() (*wasmfilterv3.Wasm, error) {
	js, err := WasmPluginConfig(m.cfg)
	if err != nil {
		return nil, err
	}
	conf, err := anypb.New(wrapperspb.String(string(js)))
	if err != nil {
		return nil, fmt.Errorf("pack wasm configuration: %w", err)
	}
	return &wasmfilterv3.Wasm{Config: &wasmv3.PluginConfig{
		Name:   WasmPluginName,
		RootId: WasmPluginName,
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			VmId:    WasmPluginName,
			Runtime: "envoy.wasm.runtime.v8",
			Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
				Specifier: &corev3.DataSource_Filename{Filename: m.WasmPath},
			}}},
			EnvironmentVariables: &wasmv3.EnvironmentVariables{KeyValues: map[string]string{"GOGC": wasmGOGC}},
		}},
		Configuration: conf,
		FailurePolicy: wasmv3.FailurePolicy_FAIL_CLOSED,
	}}, nil
}

type wasmIdentity struct {
	Tenant string `json:"tenant"`
	Tier   string `json:"tier"`
}

type wasmKey struct {
	SHA256 string `json:"sha256"`
	KeyID  string `json:"key_id"`
	wasmIdentity
}

type wasmTier struct {
	DefaultModel  string   `json:"default_model,omitempty"`
	AllowedModels []string `json:"allowed_models,omitempty"`
}

type wasmCanary struct {
	Alias  string `json:"alias"`
	Stable string `json:"stable"`
	Canary string `json:"canary"`
	Weight int    `json:"weight"`
	HashOn string `json:"hash_on,omitempty"`
}

type wasmConfig struct {
	Keys      []wasmKey           `json:"keys"`
	Anonymous *wasmIdentity       `json:"anonymous,omitempty"`
	Tiers     map[string]wasmTier `json:"tiers"`
	Canaries  []wasmCanary        `json:"canaries,omitempty"`
}

// WasmPluginConfig is the router's plugin configuration JSON derived from
// tenants and routing: every key (by SHA-256, never the key) with its
// tenant and tier, anonymous access when allowed, each tier used with its
// tenants.tiers policy (allowed models, default model) and the canaries of
// routing.canaries. The ext_proc server enforces the same policy on the
// body's model.
func WasmPluginConfig(c *config.Config) ([]byte, error) {
	tier := func(t string) string {
		if t == "" {
			return DefaultWasmTier
		}
		return t
	}
	wc := wasmConfig{Keys: []wasmKey{}, Tiers: map[string]wasmTier{}}
	policy := func(name string) wasmTier {
		t := c.Tenants.Tiers[name]
		return wasmTier{DefaultModel: t.DefaultModel, AllowedModels: t.AllowedModels}
	}
	for _, k := range c.Tenants.Keys {
		id := wasmIdentity{Tenant: k.Tenant, Tier: tier(k.Tier)}
		wc.Keys = append(wc.Keys, wasmKey{SHA256: strings.ToLower(k.SHA256), KeyID: k.ID, wasmIdentity: id})
		wc.Tiers[id.Tier] = policy(id.Tier)
	}
	if a := c.Tenants.AllowAnonymous; a != "" {
		wc.Anonymous = &wasmIdentity{Tenant: a, Tier: tier(c.Tenants.AnonymousTier)}
		wc.Tiers[wc.Anonymous.Tier] = policy(wc.Anonymous.Tier)
	}
	for _, cn := range c.Routing.Canaries {
		wc.Canaries = append(wc.Canaries, wasmCanary{Alias: cn.Alias, Stable: cn.Alias, Canary: cn.Canary, Weight: cn.Weight, HashOn: cn.HashOn})
	}
	js, err := json.Marshal(wc)
	if err != nil {
		return nil, fmt.Errorf("wasm plugin config: %w", err)
	}
	return js, nil
}

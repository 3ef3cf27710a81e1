package translate

import (
	"errors"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate-dev/tollgate/pkg/config"
)

// DefaultStaticNodeID is node.id of a static bootstrap when none is given.
const DefaultStaticNodeID = "tollgate-envoy"

// StaticOptions shape the static bootstrap beyond what the config says.
type StaticOptions struct {
	// NodeID is Envoy's node.id; default DefaultStaticNodeID.
	NodeID string
	// NodeCluster is node.cluster; default DefaultNodeCluster.
	NodeCluster string
	// AdminAddress is Envoy's admin listener; default DefaultAdminAddr.
	AdminAddress string
	// WasmPath, when set, turns the proxy-wasm router on and loads it from
	// this file (overriding xds.wasm.path); empty keeps xds.wasm as it is.
	WasmPath string
}

// StaticBootstrap is what `tollgate xds` would push for c, flattened into
// one Envoy bootstrap that needs no control plane: the ECDS filter configs
// inline in the listener, the route configuration inline in the
// HttpConnectionManager, every cluster static. The result passes
// ValidateAll. c is not modified.
func StaticBootstrap(c *config.Config, opts StaticOptions) (*bootstrapv3.Bootstrap, error) {
	if opts.NodeID == "" {
		opts.NodeID = DefaultStaticNodeID
	}
	cc := *c
	if opts.WasmPath != "" {
		cc.XDS.Wasm.Enabled = true
		cc.XDS.Wasm.Path = opts.WasmPath
	}
	r, err := Envoy(&cc)
	if err != nil {
		return nil, err
	}
	if len(r.Listeners) != 1 || len(r.Routes) != 1 || len(r.Endpoints) != 0 {
		return nil, fmt.Errorf("static bootstrap: %d listeners, %d route configurations, %d endpoint assignments; want 1, 1, 0",
			len(r.Listeners), len(r.Routes), len(r.Endpoints))
	}
	l, err := inlineListener(r)
	if err != nil {
		return nil, err
	}
	admin, err := BootstrapProto(BootstrapOptions{NodeID: opts.NodeID, NodeCluster: opts.NodeCluster, AdminAddress: opts.AdminAddress})
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{
		Node:  admin.GetNode(),
		Admin: admin.GetAdmin(),
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{l},
			Clusters:  r.Clusters,
		},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("static bootstrap: %w", err)
	}
	return b, nil
}

// inlineListener returns a copy of r's listener whose HttpConnectionManager
// carries the ECDS filter configs and the route configuration inline.
func inlineListener(r *Resources) (*listenerv3.Listener, error) {
	exts := make(map[string]*anypb.Any, len(r.Extensions))
	for _, e := range r.Extensions {
		exts[e.GetName()] = e.GetTypedConfig()
	}
	l := proto.Clone(r.Listeners[0]).(*listenerv3.Listener)
	if len(l.GetFilterChains()) != 1 || len(l.GetFilterChains()[0].GetFilters()) != 1 {
		return nil, errors.New("static bootstrap: the listener must have one filter chain with one filter")
	}
	f := l.GetFilterChains()[0].GetFilters()[0]
	var hcm hcmv3.HttpConnectionManager
	if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		return nil, fmt.Errorf("static bootstrap: listener %s: %w", l.GetName(), err)
	}
	for _, hf := range hcm.GetHttpFilters() {
		if hf.GetConfigDiscovery() == nil {
			continue
		}
		tc, ok := exts[hf.GetName()]
		if !ok {
			return nil, fmt.Errorf("static bootstrap: no ECDS resource for filter %s", hf.GetName())
		}
		hf.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: tc}
	}
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: r.Routes[0]}
	packed, err := anypb.New(&hcm)
	if err != nil {
		return nil, fmt.Errorf("static bootstrap: %w", err)
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: packed}
	return l, nil
}

// StaticBootstrapYAML renders StaticBootstrap as YAML under a comment
// header saying where it came from (header lines without "# ").
func StaticBootstrapYAML(c *config.Config, opts StaticOptions, header ...string) ([]byte, error) {
	b, err := StaticBootstrap(c, opts)
	if err != nil {
		return nil, err
	}
	out, err := ToYAML(b)
	if err != nil {
		return nil, err
	}
	var h []byte
	for _, line := range header {
		h = fmt.Appendf(h, "# %s\n", line)
	}
	return append(h, out...), nil
}

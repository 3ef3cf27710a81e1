package translate

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/pkg/config"
)

// Resources is one complete, validated set of xDS resources.
type Resources struct {
	Listeners  []*listenerv3.Listener
	Routes     []*routev3.RouteConfiguration
	Clusters   []*clusterv3.Cluster
	Endpoints  []*endpointv3.ClusterLoadAssignment
	Extensions []*corev3.TypedExtensionConfig
}

// Envoy translates a validated config into the resources an Envoy proxy
// needs: LDS, RDS, CDS and ECDS (no EDS: target clusters resolve the provider
// host by DNS). Every resource passes ValidateAll.
func Envoy(c *config.Config) (*Resources, error) {
	m, err := BuildModel(c)
	if err != nil {
		return nil, err
	}
	return m.Envoy()
}

// GRPC translates a validated config into resources for a proxyless gRPC
// client (grpc-go's xDS resolver) that dials xds:///ListenerName: an API
// listener with the router filter and, inline, the same routes on x-tollgate-route, the
// same aggregate cluster per alias over one EDS cluster per target, and an
// endpoint assignment per target. Envoy-only parts (ext_proc, wasm, TLS,
// upstream filters, retry policy) are left out: gRPC fails over between the
// aggregate's priorities itself.
func GRPC(c *config.Config) (*Resources, error) {
	m, err := BuildModel(c)
	if err != nil {
		return nil, err
	}
	return m.GRPC()
}

// Envoy builds the Envoy variant from the model.
func (m *Model) Envoy() (*Resources, error) {
	l, err := m.listener()
	if err != nil {
		return nil, err
	}
	exts, err := m.extensionConfigs()
	if err != nil {
		return nil, err
	}
	rc, err := m.routeConfig(true)
	if err != nil {
		return nil, err
	}
	clusters, err := m.clusters(false)
	if err != nil {
		return nil, err
	}
	r := &Resources{
		Listeners:  []*listenerv3.Listener{l},
		Routes:     []*routev3.RouteConfiguration{rc},
		Clusters:   clusters,
		Extensions: exts,
	}
	return r, r.Validate()
}

// GRPC builds the proxyless-gRPC variant from the model.
func (m *Model) GRPC() (*Resources, error) {
	rc, err := m.routeConfig(false)
	if err != nil {
		return nil, err
	}
	l, err := m.apiListener(rc)
	if err != nil {
		return nil, err
	}
	clusters, err := m.clusters(true)
	if err != nil {
		return nil, err
	}
	r := &Resources{
		Listeners: []*listenerv3.Listener{l},
		Clusters:  clusters,
		Endpoints: m.endpoints(),
	}
	return r, r.Validate()
}

// validator is what every generated Envoy message implements.
type validator interface{ ValidateAll() error }

// Validate runs ValidateAll on every resource and reports every failure.
func (r *Resources) Validate() error {
	var errs []error
	for _, msg := range r.all() {
		v, ok := msg.(validator)
		if !ok {
			errs = append(errs, fmt.Errorf("%T has no ValidateAll", msg))
			continue
		}
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", proto.MessageName(msg), resourceName(msg), err))
		}
	}
	return errors.Join(errs...)
}

func (r *Resources) all() []proto.Message {
	var out []proto.Message
	for _, x := range r.Listeners {
		out = append(out, x)
	}
	for _, x := range r.Routes {
		out = append(out, x)
	}
	for _, x := range r.Clusters {
		out = append(out, x)
	}
	for _, x := range r.Endpoints {
		out = append(out, x)
	}
	for _, x := range r.Extensions {
		out = append(out, x)
	}
	return out
}

// ByType groups the resources by xDS type URL, as cache.NewSnapshot wants them.
func (r *Resources) ByType() map[resource.Type][]types.Resource {
	out := map[resource.Type][]types.Resource{}
	add := func(t resource.Type, rs ...types.Resource) { out[t] = append(out[t], rs...) }
	for _, x := range r.Listeners {
		add(resource.ListenerType, x)
	}
	for _, x := range r.Routes {
		add(resource.RouteType, x)
	}
	for _, x := range r.Clusters {
		add(resource.ClusterType, x)
	}
	for _, x := range r.Endpoints {
		add(resource.EndpointType, x)
	}
	for _, x := range r.Extensions {
		add(resource.ExtensionConfigType, x)
	}
	return out
}

func resourceName(m proto.Message) string {
	switch x := m.(type) {
	case *listenerv3.Listener:
		return x.GetName()
	case *routev3.RouteConfiguration:
		return x.GetName()
	case *clusterv3.Cluster:
		return x.GetName()
	case *endpointv3.ClusterLoadAssignment:
		return x.GetClusterName()
	case *corev3.TypedExtensionConfig:
		return x.GetName()
	}
	return ""
}

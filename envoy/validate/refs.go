package validate

import (
	"fmt"
	"sort"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"
)

// refError is a dangling reference and the YAML line that makes it.
type refError struct {
	line int
	err  error
}

// checkRefs checks the references inside an Envoy bootstrap that Envoy
// itself only reports at startup (or, worse, per request): every cluster a
// route, a gRPC service (ext_proc, xDS) or an aggregate cluster names is
// defined in static_resources.clusters (unless clusters also come from
// CDS), and every RDS route configuration has a source: ADS needs
// dynamic_resources.ads_config. Other documents have nothing to check
// against, and a bootstrap that does not parse was already reported.
func checkRefs(d document) []refError {
	if k, err := detect(d); err != nil || k != KindEnvoyBootstrap {
		return nil
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(d.js, &b); err != nil {
		return nil
	}
	static := map[string]bool{}
	for _, c := range b.GetStaticResources().GetClusters() {
		static[c.GetName()] = true
	}
	dyn := b.GetDynamicResources()
	cds := dyn.GetCdsConfig() != nil || dyn.GetCdsResourcesLocator() != ""
	hasADS := dyn.GetAdsConfig() != nil

	var out []refError
	seen := map[string]bool{}
	report := func(keys []string, name, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if seen[msg] {
			return
		}
		seen[msg] = true
		out = append(out, refError{line: findScalar(d.node, keys, name, d.line), err: fmt.Errorf("%s", msg)})
	}
	known := func() string {
		names := make([]string, 0, len(static))
		for n := range static {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Sprintf("%v", names)
	}
	cluster := func(what, name string, keys ...string) {
		if name == "" || static[name] || cds {
			return
		}
		report(keys, name, "%s %q is not defined in static_resources.clusters (defined: %s)", what, name, known())
	}
	// Clusters that carry xDS itself must be static even with CDS.
	for _, src := range []*corev3.ApiConfigSource{dyn.GetAdsConfig(), dyn.GetCdsConfig().GetApiConfigSource(), dyn.GetLdsConfig().GetApiConfigSource()} {
		for _, g := range src.GetGrpcServices() {
			if n := g.GetEnvoyGrpc().GetClusterName(); n != "" && !static[n] {
				report([]string{"cluster_name"}, n, "xDS gRPC service cluster %q is not defined in static_resources.clusters (defined: %s)", n, known())
			}
		}
	}
	walkDeep(&b, func(m proto.Message) {
		switch x := m.(type) {
		case *corev3.GrpcService_EnvoyGrpc:
			cluster("gRPC service (e.g. ext_proc grpc_service) cluster_name", x.GetClusterName(), "cluster_name")
		case *routev3.RouteAction:
			cluster("route cluster", x.GetCluster(), "cluster")
			for _, w := range x.GetWeightedClusters().GetClusters() {
				cluster("route weighted cluster", w.GetName(), "name")
			}
		case *aggregatev3.ClusterConfig:
			for _, c := range x.GetClusters() {
				cluster("aggregate cluster member", c, "clusters")
			}
		case *hcmv3.HttpConnectionManager:
			rds := x.GetRds()
			if rds == nil {
				return
			}
			if rds.GetConfigSource().GetAds() != nil && !hasADS {
				report([]string{"route_config_name"}, rds.GetRouteConfigName(),
					"rds route_config_name %q: its config_source is ads, but the bootstrap has no dynamic_resources.ads_config, so no route configuration of that name can arrive (define the routes inline with route_config, or add ads_config)", rds.GetRouteConfigName())
			}
		}
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].line < out[j].line })
	return out
}

// walkDeep calls f for every message inside m, including the contents of
// every Any (an Any that does not resolve was already reported).
func walkDeep(m proto.Message, f func(proto.Message)) {
	walkMessages(m.ProtoReflect(), func(msg proto.Message) bool {
		if a, ok := msg.(*anypb.Any); ok {
			if inner, err := a.UnmarshalNew(); err == nil {
				f(inner)
				walkDeep(inner, f)
			}
			return false
		}
		f(msg)
		return true
	})
}

// findScalar returns the line of the first mapping entry under n whose key
// is one of keys and whose value is (or, for a sequence, contains) value;
// def when there is none.
func findScalar(n *yaml.Node, keys []string, value string, def int) int {
	if n == nil {
		return def
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var find func(n *yaml.Node) int
	find = func(n *yaml.Node) int {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if want[k.Value] {
					if v.Kind == yaml.ScalarNode && v.Value == value {
						return v.Line
					}
					if v.Kind == yaml.SequenceNode {
						for _, c := range v.Content {
							if c.Kind == yaml.ScalarNode && c.Value == value {
								return c.Line
							}
						}
					}
				}
				if l := find(v); l > 0 {
					return l
				}
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				if l := find(c); l > 0 {
					return l
				}
			}
		}
		return 0
	}
	if l := find(n); l > 0 {
		return l
	}
	return def
}

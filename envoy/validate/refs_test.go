package validate_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/envoy/validate"
)

// `go test ./envoy/... -update` regenerates files in other envoy packages.
var _ = flag.Bool("update", false, "no generated files in this package")

// refBootstrap is a small bootstrap: a listener whose route and ext_proc
// filter name clusters, and an aggregate cluster. Tests break one reference.
const refBootstrap = `static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 0.0.0.0, port_value: 10000}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: llm
          route_config:
            virtual_hosts:
            - name: all
              domains: ['*']
              routes:
              - match: {prefix: /}
                route: {cluster: provider}
          http_filters:
          - name: envoy.filters.http.ext_proc
            typed_config:
              '@type': type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              grpc_service: {envoy_grpc: {cluster_name: tollgate_extproc}}
          - name: envoy.filters.http.router
            typed_config:
              '@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: provider
    cluster_type:
      name: envoy.clusters.aggregate
      typed_config:
        '@type': type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig
        clusters: [primary, backup]
    lb_policy: CLUSTER_PROVIDED
  - {name: primary, type: STATIC}
  - {name: backup, type: STATIC}
  - {name: tollgate_extproc, type: STATIC}
`

func TestReferences(t *testing.T) {
	require.NoError(t, validate.Validate("b.yaml", []byte(refBootstrap)), "the unbroken bootstrap is valid")
	tests := []struct {
		name      string
		from, to  string
		want      string
		wantLines []string
	}{
		{"route to a missing cluster", "route: {cluster: provider}", "route: {cluster: provder}",
			`route cluster "provder" is not defined in static_resources.clusters`, []string{"b.yaml:17:"}},
		{"ext_proc cluster missing", "cluster_name: tollgate_extproc}", "cluster_name: tollgate-extproc}",
			`cluster_name "tollgate-extproc" is not defined`, []string{"b.yaml:22:"}},
		{"aggregate member missing", "clusters: [primary, backup]", "clusters: [primary, backup2]",
			`aggregate cluster member "backup2" is not defined`, []string{"b.yaml:32:"}},
		{"rds over ads without ads_config", "          route_config:\n            virtual_hosts:\n            - name: all\n              domains: ['*']\n              routes:\n              - match: {prefix: /}\n                route: {cluster: provider}\n",
			"          rds: {route_config_name: llm_routes, config_source: {ads: {}, resource_api_version: V3}}\n",
			`rds route_config_name "llm_routes": its config_source is ads, but the bootstrap has no dynamic_resources.ads_config`, []string{"b.yaml:11:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(refBootstrap, tt.from, tt.to, 1)
			require.NotEqual(t, refBootstrap, bad)
			err := validate.Validate("b.yaml", []byte(bad))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			for _, l := range tt.wantLines {
				assert.Contains(t, err.Error(), l)
			}
		})
	}
}

func TestReferencesWithCDS(t *testing.T) {
	// Clusters from CDS may satisfy a route; the xDS cluster itself must be static.
	b := strings.Replace(refBootstrap, "route: {cluster: provider}", "route: {cluster: from_cds}", 1) +
		"dynamic_resources:\n  cds_config: {ads: {}, resource_api_version: V3}\n  ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}\n"
	err := validate.Validate("b.yaml", []byte(b))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `b.yaml:39: document 1: xDS gRPC service cluster "xds" is not defined`)
	assert.NotContains(t, err.Error(), "from_cds")
}

// TestErrorsNameYAMLLines: a parse error points at the YAML line, not at an
// offset in the JSON the file is converted to.
func TestErrorsNameYAMLLines(t *testing.T) {
	bad := strings.Replace(refBootstrap, "  - {name: backup, type: STATIC}\n", "  - {name: backup, type: STATIC, conect_timeout: 1s}\n", 1)
	err := validate.Validate("b.yaml", []byte(bad))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "b.yaml:35: document 1:")
	assert.Contains(t, err.Error(), `(line 35): unknown field "conect_timeout"`)

	multi := "node: {id: a}\n---\nnode: {id: b}\nstatic_resources:\n  clusters:\n  - name: c\n    typo: 1\n"
	err = validate.Validate("m.yaml", []byte(multi))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "m.yaml:7: document 2:")
}

// TestTollgateProblemsAtFileLines: a tollgate.yaml on its own (comments
// before it) or inside a ConfigMap is reported at the lines of the file.
func TestTollgateProblemsAtFileLines(t *testing.T) {
	cm := "apiVersion: v1\nkind: Namespace\nmetadata: {name: t}\n---\n# comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  tollgate.yaml: |\n" +
		"    providers:\n      p: {base_url: \"http://x\"}\n    models:\n      m: {targets: [{provider: q, model: x}]}\n    tenants:\n      allow_anonymous: false\n"
	err := validate.Validate("cm.yaml", []byte(cm))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `cm.yaml:14: document 2: v1/ConfigMap: tollgate.yaml: models.m.targets[0].provider: unknown provider "q"`)
	assert.Contains(t, err.Error(), "cm.yaml:16: document 2: tollgate.yaml: tenants.allow_anonymous: got the boolean false")

	tg := "# comment\n\nproviders:\n  p: {base_url: \"ftp://x\"}\nmodels:\n  m: {targets: [{provider: p, model: x}]}\n"
	err = validate.Validate("tg.yaml", []byte(tg))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tg.yaml:4: document 1: tollgate.yaml: providers.p.base_url: scheme must be http or https")
}

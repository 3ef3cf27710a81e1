package validate_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/tollgate-dev/tollgate/envoy/validate"
)

const efHead = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: x}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match: {context: GATEWAY}
    patch:
      operation: INSERT_BEFORE
      value:
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		kinds   []validate.Kind
		wantErr string
	}{
		{name: "bootstrap", in: "node: {id: n}\nstatic_resources: {}\n", kinds: []validate.Kind{validate.KindEnvoyBootstrap}},
		{name: "bootstrap unknown field", in: "static_resources: {}\nnot_a_field: 1\n", wantErr: "not_a_field"},
		{name: "bootstrap bad any", in: "static_resources:\n  clusters:\n  - name: c\n    typed_extension_protocol_options:\n      x:\n        '@type': type.googleapis.com/envoy.nope.V1\n", wantErr: "envoy.nope.V1"},
		{name: "bootstrap fails ValidateAll", in: "static_resources:\n  clusters:\n  - name: ''\n", wantErr: "Name"},
		{name: "ext_proc", in: "grpc_service: {envoy_grpc: {cluster_name: c}}\n", kinds: []validate.Kind{validate.KindEnvoyExtProc}},
		{name: "ecds reference bad type url", in: "name: f\nconfig_discovery:\n  config_source: {ads: {}}\n  type_urls: [type.googleapis.com/nope.X]\n", wantErr: "nope.X"},
		{name: "tollgate config", in: "listen: {extproc: 127.0.0.1:1}\nmodelz: {}\n", wantErr: "modelz"},
		{name: "unknown document", in: "hello: world\n", wantErr: "unrecognised"},
		{name: "empty", in: "# nothing\n", wantErr: "no YAML document"},
		{name: "duplicate key", in: "node: {}\nnode: {}\n", wantErr: "already defined"},
		{name: "not a mapping", in: "- a\n", wantErr: "mapping"},
		{name: "unsupported object", in: "apiVersion: v9\nkind: Thing\n", wantErr: "unsupported object"},
		{name: "k8s typo", in: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {prots: []}\n", wantErr: "prots"},
		{name: "k8s case matters", in: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {Ports: []}\n", wantErr: "Ports"},
		{name: "k8s multi document", in: "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
			kinds: []validate.Kind{validate.KindKubernetes, validate.KindKubernetes}},
		{name: "deployment unknown resource", in: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        resources: {requests: {memroy: 1Mi}}\n", wantErr: "memroy"},
		{name: "istio spec typo", in: "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec: {hostz: [a]}\n", wantErr: "hostz"},
		{name: "envoyfilter patch parses as HttpFilter", in: efHead + "        name: f\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor\n          grpc_service: {envoy_grpc: {cluster_name: c}}\n"},
		{name: "envoyfilter patch typo inside typed_config", in: efHead + "        name: f\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor\n          grpc_servic: {envoy_grpc: {cluster_name: c}}\n", wantErr: "grpc_servic"},
		{name: "envoyfilter patch invalid", in: efHead + "        name: ''\n", wantErr: "Name"},
		{name: "gateway policy typo", in: "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyExtensionPolicy\nmetadata: {name: p}\nspec: {targetRefs: [{group: g, kind: Gateway, name: eg}], extProc: [{backendRefs: [{name: s}], failOpne: false}]}\n", wantErr: "failOpne"},
		{name: "gateway policy bad body mode", in: "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyExtensionPolicy\nmetadata: {name: p}\nspec: {targetRefs: [{group: g, kind: Gateway, name: eg}], extProc: [{backendRefs: [{name: s}], processingMode: {request: {body: BUFFERED}}}]}\n", wantErr: "BUFFERED"},
		{name: "prometheus rules", in: "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 5m\n", kinds: []validate.Kind{validate.KindPrometheusRules}},
		{name: "prometheus rule typo", in: "groups:\n- name: g\n  rules:\n  - alert: A\n    exrp: up == 0\n", wantErr: "exrp"},
		{name: "prometheus record and alert", in: "groups:\n- name: g\n  rules:\n  - alert: A\n    record: r\n    expr: up\n", wantErr: "exactly one of record, alert"},
		{name: "promtool tests typo", in: "rule_files: [a.yaml]\ntests:\n- input_series: [{series: up, values: '1'}]\n  alert_rule_tests: []\n", wantErr: "alert_rule_tests"},
		{name: "client traffic policy", in: "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: c}\nspec: {targetRefs: [{group: g, kind: Gateway, name: eg}], connection: {bufferLimit: 5Mi}}\n"},
		{name: "client traffic policy bad quantity", in: "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: c}\nspec: {targetRefs: [{group: g, kind: Gateway, name: eg}], connection: {bufferLimit: 5MB}}\n", wantErr: "bufferLimit"},
		{name: "client traffic policy limit too large", in: "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: c}\nspec: {targetRefs: [{group: g, kind: Gateway, name: eg}], connection: {bufferLimit: 5Gi}}\n", wantErr: "4Gi"},
		{name: "envoyfilter listener merge typo", in: "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: x}\nspec:\n  configPatches:\n  - applyTo: LISTENER\n    match: {context: GATEWAY}\n    patch: {operation: MERGE, value: {per_connection_buffer_limit: 5242880}}\n", wantErr: "per_connection_buffer_limit"},
		{name: "backend needs endpoints", in: "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: Backend\nmetadata: {name: b}\nspec: {endpoints: []}\n", wantErr: "endpoints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate.Validate(tt.name, []byte(tt.in))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			kinds, err := validate.Kinds([]byte(tt.in))
			require.NoError(t, err)
			if tt.kinds != nil {
				assert.Equal(t, tt.kinds, kinds)
			}
		})
	}
}

func TestValidateEnvoyFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte("grpc_service: {envoy_grpc: {cluster_name: c}}\n"), 0o644))
	assert.NoError(t, validate.ValidateEnvoyFile(good))
	err := validate.ValidateEnvoyFile(filepath.Join(dir, "missing.yaml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// FuzzValidate checks the properties `tollgate validate` users rely on:
// the same file always gets the same verdict and messages; every message
// names the file; a file that validates has a recognised kind for each of
// its documents; and a multi-document file is valid exactly when each of
// its documents is valid on its own (no document's problem is lost or
// blamed on another).
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		"node: {id: n}\nstatic_resources: {}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
		efHead + "        name: f\n",
		"---\n---\n",
		"listen: {}\n",
		"grpc_service: {envoy_grpc: {cluster_name: c}}\n---\nstatic_resources: {}\nnot_a_field: 1\n",
		"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
	} {
		f.Add([]byte(s))
	}
	known := map[validate.Kind]bool{
		validate.KindTollgateConfig: true, validate.KindEnvoyBootstrap: true, validate.KindEnvoyExtProc: true,
		validate.KindEnvoyExtensionConfig: true, validate.KindEnvoyHTTPFilter: true, validate.KindEnvoyHTTPFilterList: true,
		validate.KindKubernetes: true, validate.KindPrometheusRules: true, validate.KindPrometheusRuleTests: true,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		err := validate.Validate(name, data)
		again := validate.Validate(name, data)
		if (err == nil) != (again == nil) || (err != nil && err.Error() != again.Error()) {
			t.Fatalf("two validations of the same bytes disagree: %v / %v", err, again)
		}
		if err != nil {
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				if !strings.HasPrefix(e.Error(), name+":") {
					t.Fatalf("message does not name the file: %q", e.Error())
				}
			}
		}
		docs := splitDocuments(data)
		if docs == nil {
			return // not a YAML stream: nothing more to compare
		}
		if err == nil {
			kinds, kerr := validate.Kinds(data)
			if kerr != nil || len(kinds) != len(docs) {
				t.Fatalf("valid file: kinds %v, %v; want one per document (%d)", kinds, kerr, len(docs))
			}
			for _, k := range kinds {
				if !known[k] {
					t.Fatalf("valid file with unknown kind %q", k)
				}
			}
		}
		if len(docs) < 2 {
			return
		}
		allValid := true
		for _, d := range docs {
			allValid = allValid && validate.Validate(name, d) == nil
		}
		if allValid != (err == nil) {
			t.Fatalf("file valid: %v, every document valid on its own: %v (%v)", err == nil, allValid, err)
		}
	})
}

// splitDocuments re-encodes each non-empty document of a YAML stream on its
// own; nil when data is not a YAML stream.
func splitDocuments(data []byte) [][]byte {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	docs := [][]byte{}
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			return nil
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		out, err := yaml.Marshal(&n)
		if err != nil {
			return nil
		}
		docs = append(docs, out)
	}
}

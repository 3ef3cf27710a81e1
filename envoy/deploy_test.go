package envoy_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/envoy"
	"github.com/tollgate-dev/tollgate/envoy/validate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/prompts"
)

// deployStaticFile is the static Envoy config for users without tollgate xds.
const deployStaticFile = "static/envoy.yaml"

// deployWasmPath is where the static config expects the compiled router.
const deployWasmPath = "/etc/envoy/wasm/tollgate-router.wasm"

// deployStaticBootstrap is what `tollgate render envoy --wasm-path
// deployWasmPath` writes for the embedded default config.
func deployStaticBootstrap(t *testing.T) *bootstrapv3.Bootstrap {
	t.Helper()
	cfg, err := config.Default()
	require.NoError(t, err)
	b, err := translate.StaticBootstrap(cfg, translate.StaticOptions{WasmPath: deployWasmPath})
	require.NoError(t, err)
	return b
}

func TestDeployStaticEnvoyIsGenerated(t *testing.T) {
	out, err := translate.ToYAML(deployStaticBootstrap(t))
	require.NoError(t, err)
	header := "# Static Envoy config for Tollgate without `tollgate xds`: generated from\n" +
		"# controlplane/translate for envoy/tollgate.yaml by `go test ./envoy -update`; do not edit.\n" +
		"# Needs `tollgate extproc` on 127.0.0.1:50051 and " + deployWasmPath + "\n" +
		"# (scripts/build-wasm.sh). See docs/quickstart-envoy.md.\n"
	want := append([]byte(header), out...)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(deployStaticFile), 0o755))
		require.NoError(t, os.WriteFile(deployStaticFile, want, 0o644))
	}
	got, err := os.ReadFile(deployStaticFile)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "%s is stale: go test ./envoy -run DeployStatic -update", deployStaticFile)
}

func TestDeployStaticEnvoyShape(t *testing.T) {
	data, err := os.ReadFile(deployStaticFile)
	require.NoError(t, err)
	require.NoError(t, validate.Validate(deployStaticFile, data))
	b := parseBootstrap(t, data)
	assert.Nil(t, b.GetDynamicResources(), "the static form needs no control plane")
	assert.NotContains(t, string(data), "ads:", "no xDS config source may remain")
	assert.Equal(t, "127.0.0.1", b.GetAdmin().GetAddress().GetSocketAddress().GetAddress(), "admin on loopback only")

	require.Len(t, b.GetStaticResources().GetListeners(), 1)
	var hcm hcmv3.HttpConnectionManager
	require.NoError(t, b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm))
	var names []string
	for _, f := range hcm.GetHttpFilters() {
		names = append(names, f.GetName())
		assert.NotNil(t, f.GetTypedConfig(), "filter %s must be inline", f.GetName())
	}
	assert.Equal(t, []string{translate.WasmFilterName, translate.ExtProcFilterName, "envoy.filters.http.router"}, names)
	// The inline router config is one the compiled router accepts.
	var w wasmfilterv3.Wasm
	require.NoError(t, hcm.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&w))
	assert.Equal(t, deployWasmPath, w.GetConfig().GetVmConfig().GetCode().GetLocal().GetFilename())
	checkRouterAccepts(t, checkWasmFilter(t, &w))
	rc := hcm.GetRouteConfig()
	require.NotNil(t, rc)
	routes := rc.GetVirtualHosts()[0].GetRoutes()
	require.NotEmpty(t, routes)
	// Routes match the dynamic metadata ext_proc writes, never a header.
	for _, r := range routes[:len(routes)-1] {
		require.Len(t, r.GetMatch().GetDynamicMetadata(), 1, "route %s", r.GetName())
		assert.Equal(t, contract.MetadataNamespace, r.GetMatch().GetDynamicMetadata()[0].GetFilter())
		assert.Empty(t, r.GetMatch().GetHeaders())
	}
	assert.NotNil(t, routes[len(routes)-1].GetDirectResponse(), "the last route answers 404")

	clusters := map[string]bool{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = true
	}
	assert.True(t, clusters[translate.ExtProcCluster])
	assert.True(t, clusters[translate.AliasClusterName("gpt-4o-mini")])
}

// deployClaimed lists every YAML file under envoy/ and says which test
// loads it beyond TestDeployEveryFileValidates (which loads all of them).
var deployClaimed = map[string]string{
	"tollgate.yaml":                      "pkg/config (embedded default)",
	"tollgate.production.yaml":           "TestProductionExampleValidates",
	"bootstrap.yaml":                     "TestBootstrapFileParsesAndValidates",
	"extproc/downstream.yaml":            "TestExtProcFilterFilesMatchTranslator",
	"extproc/upstream.yaml":              "TestExtProcFilterFilesMatchTranslator",
	"wasm/http-filter-ecds.yaml":         "TestWasmECDSHTTPFilterReference",
	"wasm/http-filters-static.yaml":      "TestWasmStaticHTTPFilter",
	"wasm/tollgate-router-ecds.yaml":     "TestWasmECDSConfig",
	"istio/wasmplugin.yaml":              "TestIstioWasmPlugin",
	deployStaticFile:                     "TestDeployStaticEnvoyShape",
	"istio/extproc-gateway.yaml":         "TestDeployIstio",
	"istio/extproc-sidecar.yaml":         "TestDeployIstio",
	"istio/providers.yaml":               "TestDeployIstio",
	"istio/routes.yaml":                  "TestDeployIstio",
	"istio/buffer-limit.yaml":            "TestDeployBufferLimits",
	"gateway/client-traffic-policy.yaml": "TestDeployBufferLimits",
	"gateway/extension-policy.yaml":      "TestDeployGateway",
	"gateway/backends.yaml":              "TestDeployGateway",
	"gateway/httproute.yaml":             "TestDeployGateway",
	"k8s/configmap.yaml":                 "TestDeployKubernetes",
	"k8s/extproc.yaml":                   "TestDeployKubernetes",
	"k8s/xds.yaml":                       "TestDeployKubernetes",
	"k8s/redis.yaml":                     "TestDeployKubernetes",
}

// deployClaimedDirs are directories whose YAML files are claimed by another
// test file (they are still validated and typo-checked here).
var deployClaimedDirs = map[string]string{
	"observability/": "observability_test.go (Prometheus rules and promtool tests)",
}

func deployIsClaimed(f string) bool {
	if _, ok := deployClaimed[f]; ok {
		return true
	}
	for dir := range deployClaimedDirs {
		if strings.HasPrefix(f, dir) {
			return true
		}
	}
	return false
}

// deployYAMLFiles walks envoy/ for YAML files (paths relative to envoy/);
// prompts/ holds prompt templates, not deployment files
// (TestDefaultPromptsLoad loads them).
func deployYAMLFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || p == "prompts") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			out = append(out, filepath.ToSlash(p))
		}
		return nil
	}))
	return out
}

// Every YAML file under envoy/ is claimed, and every claimed file exists.
func TestDeployEveryFileIsClaimed(t *testing.T) {
	files := deployYAMLFiles(t)
	for _, f := range files {
		assert.True(t, deployIsClaimed(f), "%s is loaded by no test: add it to deployClaimed and to a test", f)
	}
	for f := range deployClaimed {
		assert.Contains(t, files, f, "deployClaimed names a missing file")
	}
	assert.False(t, deployIsClaimed("k8s/unclaimed.yaml"), "an unlisted file is not claimed")
}

// Every YAML file under envoy/ passes `tollgate validate --envoy`.
func TestDeployEveryFileValidates(t *testing.T) {
	for _, f := range deployYAMLFiles(t) {
		t.Run(f, func(t *testing.T) {
			assert.NoError(t, validate.ValidateEnvoyFile(f))
		})
	}
}

// deployFreeForm are mapping keys whose children are user data (label
// values, map keys of proto maps, free-form structs): renaming one of their
// children is not a typo the schema can see.
var deployFreeForm = []string{
	".labels", ".annotations", ".matchLabels", ".spec.selector", ".headers", ".data", ".key_values",
	".typed_extension_protocol_options", ".filter_metadata",
	".pluginConfig", ".spec.wasm.config", ".exp_labels", ".exp_annotations", ".external_labels",
	// tollgate.yaml maps keyed by user-chosen names.
	".providers", ".models", ".budgets.tenants", ".tiers",
}

func deployIsFreeForm(path string) bool {
	for _, s := range deployFreeForm {
		if strings.HasSuffix(path, s) {
			return true
		}
	}
	return false
}

// deployMutations yields one copy of doc per mapping key (outside free-form
// maps) with that key misspelt, named by its path.
func deployMutations(doc *yaml.Node) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	var paths [][]int
	var names []string
	var walk func(n *yaml.Node, path []int, name string)
	walk = func(n *yaml.Node, path []int, name string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, append(append([]int{}, path...), i), name)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				p := append(append([]int{}, path...), i)
				if k != "@type" {
					paths = append(paths, p)
					names = append(names, name+"."+k)
				}
				if !deployIsFreeForm(name + "." + k) {
					walk(n.Content[i+1], append(append([]int{}, path...), i+1), name+"."+k)
				}
			}
		}
	}
	walk(doc, nil, "")
	for i, p := range paths {
		c := deployCloneNode(doc)
		n := c
		for _, idx := range p {
			n = n.Content[idx]
		}
		n.Value += "_typo"
		out[names[i]] = c
	}
	return out
}

func deployCloneNode(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, ch := range n.Content {
		c.Content[i] = deployCloneNode(ch)
	}
	return &c
}

// A misspelt field name anywhere in any file under envoy/ fails validation.
func TestDeployEveryFieldTypoFails(t *testing.T) {
	for _, f := range deployYAMLFiles(t) {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			dec := yaml.NewDecoder(bytes.NewReader(data))
			var docs []*yaml.Node
			for {
				var n yaml.Node
				if dec.Decode(&n) != nil {
					break
				}
				docs = append(docs, &n)
			}
			require.NotEmpty(t, docs)
			checked := 0
			for di, doc := range docs {
				for name, mutated := range deployMutations(doc) {
					var buf bytes.Buffer
					for dj, d := range docs {
						if dj == di {
							d = mutated
						}
						enc := yaml.NewEncoder(&buf)
						require.NoError(t, enc.Encode(d))
						require.NoError(t, enc.Close())
						buf.WriteString("---\n")
					}
					checked++
					assert.Error(t, validate.Validate(f, buf.Bytes()), "document %d: misspelt %s was accepted", di+1, name)
				}
			}
			assert.NotZero(t, checked)
		})
	}
}

// A wrong type URL fails too.
func TestDeployWrongTypeURLFails(t *testing.T) {
	for _, f := range deployYAMLFiles(t) {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		if !bytes.Contains(data, []byte("type.googleapis.com/envoy.")) {
			continue
		}
		t.Run(f, func(t *testing.T) {
			bad := bytes.ReplaceAll(data, []byte("type.googleapis.com/envoy."), []byte("type.googleapis.com/envoy.x."))
			assert.Error(t, validate.Validate(f, bad))
		})
	}
}

// The prompt registry of the embedded default config loads from the
// compiled-in copy and from disk alike.
func TestDefaultPromptsLoad(t *testing.T) {
	onDisk, err := prompts.LoadDir("prompts")
	require.NoError(t, err)
	sub, err := fs.Sub(envoy.DefaultPrompts, "prompts")
	require.NoError(t, err)
	embedded, err := prompts.LoadFS(sub, "prompts")
	require.NoError(t, err)
	assert.Equal(t, []string{"support-answer"}, embedded.Names())
	assert.Equal(t, onDisk.Names(), embedded.Names())
	p, err := embedded.Resolve("support-answer")
	require.NoError(t, err)
	assert.Equal(t, "support-answer@2", p.Ref())
}

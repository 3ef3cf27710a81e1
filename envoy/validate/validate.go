package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kind is what a YAML document was recognised as.
type Kind string

// The kinds of document Validate recognises.
const (
	KindTollgateConfig       Kind = "tollgate.yaml"
	KindEnvoyBootstrap       Kind = "envoy.config.bootstrap.v3.Bootstrap"
	KindEnvoyExtProc         Kind = "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
	KindEnvoyExtensionConfig Kind = "envoy.config.core.v3.TypedExtensionConfig"
	KindEnvoyHTTPFilter      Kind = "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter"
	KindEnvoyHTTPFilterList  Kind = "http_filters"
	KindKubernetes           Kind = "kubernetes"
	KindPrometheusRules      Kind = "prometheus rule file"
	KindPrometheusRuleTests  Kind = "promtool rule tests"
)

// ValidateEnvoyFile reads path and validates every YAML document in it (see
// Validate).
func ValidateEnvoyFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	return Validate(path, data)
}

// Validate validates every document of a (possibly multi-document) YAML
// file; name is used in messages. Each document's kind is detected (a
// Kubernetes-style apiVersion/kind, an Envoy bootstrap or filter fragment, or
// a tollgate.yaml) and every problem in every document is reported.
func Validate(name string, data []byte) error {
	docs, err := documents(data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(docs) == 0 {
		return fmt.Errorf("%s: no YAML document", name)
	}
	var errs []error
	for i, d := range docs {
		if _, err := validateDoc(d); err != nil {
			errs = append(errs, located(name, i+1, d, err))
		}
		for _, err := range checkRefs(d) {
			errs = append(errs, fmt.Errorf("%s:%d: document %d: %w", name, err.line, i+1, err.err))
		}
	}
	return errors.Join(errs...)
}

// located prefixes each line of err with the file and, where the message
// has a JSON position, the YAML line it came from:
// "envoy.yaml:6: document 1: ... unknown field".
func located(name string, doc int, d document, err error) error {
	var out []string
	for _, msg := range strings.Split(err.Error(), "\n") {
		line := d.line
		if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.Replace(msg, m[0], "", 1)
		} else if m := jsonLineRe.FindStringSubmatch(msg); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(d.lines) {
				line = d.lines[n-1]
			}
		}
		out = append(out, fmt.Sprintf("%s:%d: document %d: %s", name, line, doc, yamlLines(msg, d.lines)))
	}
	return errors.New(strings.Join(out, "\n"))
}

// yamlLineRe is the marker of a message that already knows its file line.
var yamlLineRe = regexp.MustCompile(` \(yaml line (\d+)\)`)

// Kinds reports the kind of each document in data, without validating.
func Kinds(data []byte) ([]Kind, error) {
	docs, err := documents(data)
	if err != nil {
		return nil, err
	}
	out := make([]Kind, 0, len(docs))
	for _, d := range docs {
		k, err := detect(d)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// document is one YAML document: its source and its JSON form.
type document struct {
	raw   []byte         // the document re-encoded as YAML (for pkg/config)
	js    []byte         // JSON, one key or scalar a line
	lines []int          // lines[i]: the YAML line of JSON line i+1
	top   map[string]any // top-level mapping
	line  int            // first line in the file
	node  *yaml.Node     // the document's root mapping
	src   []byte         // the document's text from line on, as written
}

// documents splits a YAML stream, skipping empty documents; duplicate keys
// and non-mapping documents are errors.
func documents(data []byte) ([]document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []document
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("yaml: %w", err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("yaml line %d: %w", n.Line, err)
		}
		top, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("yaml line %d: a document must be a mapping", n.Line)
		}
		var lj lineJSON
		if err := lj.encode(&n); err != nil {
			return nil, err
		}
		raw, err := yaml.Marshal(&n)
		if err != nil {
			return nil, fmt.Errorf("yaml line %d: %w", n.Line, err)
		}
		root := n.Content[0]
		out = append(out, document{raw: raw, js: lj.buf.Bytes(), lines: lj.lines, top: top, line: root.Line, node: root, src: docText(data, root.Line)})
	}
}

// docText is the text of the document whose root starts at line (1-based):
// up to the next document marker or the end of the stream.
func docText(data []byte, line int) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return nil
	}
	var out []byte
	for _, l := range lines[line-1:] {
		if bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) {
			break
		}
		out = append(out, l...)
	}
	return out
}

// detect decides a document's kind from its top-level keys.
func detect(d document) (Kind, error) {
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := d.top[k]; ok {
				return true
			}
		}
		return false
	}
	switch {
	case has("apiVersion", "kind"):
		return KindKubernetes, nil
	case has("static_resources", "dynamic_resources", "staticResources", "dynamicResources"):
		return KindEnvoyBootstrap, nil
	case has("listen", "providers", "models", "tenants", "budgets"):
		return KindTollgateConfig, nil
	case has("rule_files", "tests"):
		return KindPrometheusRuleTests, nil
	case has("groups"):
		return KindPrometheusRules, nil
	case has("http_filters", "httpFilters"):
		return KindEnvoyHTTPFilterList, nil
	case has("grpc_service", "grpcService", "processing_mode", "processingMode"):
		return KindEnvoyExtProc, nil
	case has("config_discovery", "configDiscovery"):
		return KindEnvoyHTTPFilter, nil
	case has("typed_config", "typedConfig") && has("name"):
		return KindEnvoyExtensionConfig, nil
	}
	keys := make([]string, 0, len(d.top))
	for k := range d.top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "", fmt.Errorf("line %d: unrecognised document (top-level keys %v): not an Envoy bootstrap or filter config, a Kubernetes/Istio/Envoy Gateway resource, a Prometheus rule file or rule test, or a tollgate.yaml", d.line, keys)
}

func validateDoc(d document) (Kind, error) {
	k, err := detect(d)
	if err != nil {
		return "", err
	}
	switch k {
	case KindKubernetes:
		return k, validateObject(d)
	case KindTollgateConfig:
		if d.src != nil {
			return k, validateTollgate(d.src, d.line-1)
		}
		return k, validateTollgate(d.raw, 0)
	case KindPrometheusRules:
		return k, strictInto[promRuleFile](d.js)
	case KindPrometheusRuleTests:
		return k, strictInto[promRuleTests](d.js)
	default:
		return k, validateEnvoy(k, d.js)
	}
}

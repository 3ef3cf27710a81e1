package envoysim

import (
	"encoding/json"
	"errors"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3" // TLS transport sockets in bootstraps
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"
)

// filterTypeURL is the type URL of the ext_proc filter config.
const filterTypeURL = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"

// LoadFilter parses an ExternalProcessor filter config from YAML or JSON
// (protojson field names, after YAML -> JSON). It accepts the bare message,
// or an HttpFilter / TypedExtensionConfig wrapper with the message in
// typed_config (whose "@type" must be the ext_proc type). Unknown fields
// are errors.
func LoadFilter(data []byte) (*extprocfilterv3.ExternalProcessor, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse filter yaml: %w", err)
	}
	doc, err := jsonCompatible(doc)
	if err != nil {
		return nil, err
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("filter config must be a mapping")
	}
	for _, key := range []string{"typed_config", "typedConfig"} {
		inner, ok := m[key].(map[string]any)
		if !ok {
			continue
		}
		if t, _ := inner["@type"].(string); t != filterTypeURL {
			return nil, fmt.Errorf("typed_config @type %q: want %s", t, filterTypeURL)
		}
		delete(inner, "@type")
		m = inner
		break
	}
	delete(m, "@type")
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("filter config to json: %w", err)
	}
	f := &extprocfilterv3.ExternalProcessor{}
	if err := protojson.Unmarshal(raw, f); err != nil {
		return nil, fmt.Errorf("decode ExternalProcessor: %w", err)
	}
	return f, nil
}

// jsonCompatible converts YAML-decoded values into values encoding/json
// accepts (string map keys only).
func jsonCompatible(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("non-string key %v", k)
			}
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		for i, e := range t {
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	}
	return v, nil
}

// LoadBootstrap reads an Envoy bootstrap (YAML or JSON, the format of
// envoy/static/envoy.yaml) and returns its static_resources: the first
// listener and every cluster. Unknown fields and types are errors, as they
// are for Envoy.
func LoadBootstrap(data []byte) (Resources, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Resources{}, fmt.Errorf("parse bootstrap yaml: %w", err)
	}
	doc, err := jsonCompatible(doc)
	if err != nil {
		return Resources{}, err
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return Resources{}, fmt.Errorf("bootstrap to json: %w", err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(raw, &b); err != nil {
		return Resources{}, fmt.Errorf("decode Bootstrap: %w", err)
	}
	sr := b.GetStaticResources()
	if len(sr.GetListeners()) == 0 {
		return Resources{}, errors.New("bootstrap: no static listener")
	}
	return Resources{Listener: sr.GetListeners()[0], Clusters: sr.GetClusters()}, nil
}

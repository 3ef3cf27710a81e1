package translate

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
)

// ToYAML renders a proto message as YAML the way Envoy docs write it:
// proto field names, Any types expanded with their @type, keys sorted so the
// output is stable.
func ToYAML(m proto.Message) ([]byte, error) {
	v, err := toValue(m)
	if err != nil {
		return nil, err
	}
	return marshalYAML(v)
}

// YAML renders every resource, grouped by kind in a fixed order.
func (r *Resources) YAML() ([]byte, error) {
	type group struct {
		key  string
		msgs []proto.Message
	}
	groups := []group{
		{"listeners", toMessages(r.Listeners)},
		{"routes", toMessages(r.Routes)},
		{"clusters", toMessages(r.Clusters)},
		{"endpoints", toMessages(r.Endpoints)},
		{"extension_configs", toMessages(r.Extensions)},
	}
	doc := &yaml.Node{Kind: yaml.MappingNode}
	for _, g := range groups {
		if len(g.msgs) == 0 {
			continue
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, m := range g.msgs {
			v, err := toValue(m)
			if err != nil {
				return nil, err
			}
			var n yaml.Node
			if err := n.Encode(v); err != nil {
				return nil, fmt.Errorf("yaml %s: %w", proto.MessageName(m), err)
			}
			seq.Content = append(seq.Content, &n)
		}
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: g.key}, seq)
	}
	return marshalYAML(doc)
}

func toMessages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// toValue goes through protojson so Any fields and well-known types render
// as Envoy expects (durations as "5s", enums by name).
func toValue(m proto.Message) (any, error) {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("protojson %s: %w", proto.MessageName(m), err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode protojson %s: %w", proto.MessageName(m), err)
	}
	return numbers(v), nil
}

// numbers turns json.Number leaves into int64 or float64 so YAML prints them
// unquoted (protojson's 64-bit integers stay strings, as Envoy accepts).
func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
	}
	return v
}

func marshalYAML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), nil
}

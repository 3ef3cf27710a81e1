package main

import (
	"fmt"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// tollgateConfig derives the load-test configuration from Tollgate's
// default tollgate.yaml: the spend ledger (and the audit trail) move into
// dir and budget caps are lifted (a long run would otherwise exhaust the
// demo tenant's budget and measure 429s). With allLayers false the
// guardrails, the cache, the prompt registry and the audit trail, which the
// default turns on, are turned off: the metering-and-budgets row. With
// allLayers true they stay as shipped (the prompt registry aside: it only
// acts on requests that name a prompt, and its directory is relative to the
// repository). Everything else is the shipped default.
func tollgateConfig(defaultYAML []byte, dir string, allLayers bool) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(defaultYAML, &doc); err != nil {
		return nil, fmt.Errorf("parse default config: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("default config: top level is not a mapping")
	}
	root := doc.Content[0]
	if budgets := mapValue(root, "budgets"); budgets != nil && budgets.Kind == yaml.MappingNode {
		if ledger := mapValue(budgets, "ledger"); ledger != nil && ledger.Kind == yaml.MappingNode {
			if path := mapValue(ledger, "path"); path != nil {
				path.SetString(filepath.Join(dir, "ledger.jsonl"))
			}
		}
		if tenants := mapValue(budgets, "tenants"); tenants != nil {
			*tenants = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
		}
	}
	removeKey(root, "prompts")
	if allLayers {
		if n := lookup(root, "audit", "dir"); n != nil {
			n.SetString(filepath.Join(dir, "audit"))
		}
	} else {
		for _, path := range [][]string{{"guardrails", "input", "enabled"}, {"guardrails", "output", "enabled"}, {"cache", "enabled"}} {
			if n := lookup(root, path...); n != nil {
				n.SetString("false")
				n.Tag = "!!bool"
			}
		}
		removeKey(root, "audit")
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return out, nil
}

// mapValue returns the value node of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// lookup follows keys through nested mappings; nil when one is missing.
func lookup(m *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		m = mapValue(m, k)
	}
	return m
}

// removeKey deletes key and its value from mapping m.
func removeKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

package main

import (
	"fmt"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// tollgateConfig derives the load-test configuration from Tollgate's
// default tollgate.yaml: the spend ledger moves into dir and budget caps
// are lifted (a long run would otherwise exhaust the demo tenant's budget
// and measure 429s). Everything else, including which layers are enabled,
// is the shipped default.
func tollgateConfig(defaultYAML []byte, dir string) ([]byte, error) {
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

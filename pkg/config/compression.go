package config

import "fmt"

// Compression is prompt compression for an alias (models.<alias>.compression)
// or a tenant (compression.tenants.<tenant>). It is off unless enabled; when
// enabled, each rule defaults to on.
type Compression struct {
	Enabled bool `yaml:"enabled"`
	// Whitespace folds runs of spaces, tabs and blank lines in prose
	// (never inside code fences, indented code or inline code).
	Whitespace *bool `yaml:"whitespace"`
	// JSON minifies a message that is one JSON document, and ```json blocks.
	JSON *bool `yaml:"json"`
	// Dedupe drops paragraphs and code blocks repeated earlier in the
	// conversation.
	Dedupe *bool `yaml:"dedupe"`
	// MaxPromptTokens trims the oldest turns of the history until the
	// messages fit; system/developer messages, tools and the last user
	// turn always stay. 0 = no trimming.
	MaxPromptTokens int64 `yaml:"max_prompt_tokens"`
}

// Rules returns the effective whitespace, JSON and dedupe switches.
func (c Compression) Rules() (whitespace, json, dedupe bool) {
	on := func(b *bool) bool { return b == nil || *b }
	return c.Enabled && on(c.Whitespace), c.Enabled && on(c.JSON), c.Enabled && on(c.Dedupe)
}

// CompressionSettings holds the per-tenant compression settings.
type CompressionSettings struct {
	Tenants map[string]Compression `yaml:"tenants"`
}

// CompressionFor is the compression that applies to a request of tenant to
// alias: the tenant's entry when it has one (so a tenant can opt in, or out
// with enabled: false), else the alias's.
func (c *Config) CompressionFor(tenant, alias string) Compression {
	if t, ok := c.Compression.Tenants[tenant]; ok {
		return t
	}
	if m, ok := c.Models[alias]; ok && m.Compression != nil {
		return *m.Compression
	}
	return Compression{}
}

func (v *validator) compression(c *Config) {
	check := func(path string, s Compression) {
		if s.MaxPromptTokens < 0 {
			v.add(path+".max_prompt_tokens", "must not be negative, got %d", s.MaxPromptTokens)
		}
	}
	for _, alias := range sortedKeys(c.Models) {
		if m := c.Models[alias]; m.Compression != nil {
			check(fmt.Sprintf("models.%s.compression", alias), *m.Compression)
		}
	}
	tenants := c.tenantIDs()
	for _, t := range sortedKeys(c.Compression.Tenants) {
		check("compression.tenants."+t, c.Compression.Tenants[t])
		if !tenants[t] {
			v.add("compression.tenants."+t, "tenant %q has no API key and is not the anonymous tenant", t)
		}
	}
}

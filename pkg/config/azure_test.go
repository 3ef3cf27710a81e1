package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const azureConfig = `
providers:
  oai: {base_url: "https://api.openai.com"}
  azure-eu:
    kind: azure
    base_url: https://my-resource.openai.azure.com
    api_version: 2024-10-21
models:
  gpt-4o:
    targets:
      - {provider: oai, model: gpt-4o}
      - {provider: azure-eu, model: gpt-4o, deployment: my-gpt4o}
  mini:
    targets:
      - {provider: azure-eu, model: gpt-4o-mini}
`

func TestAzureProvider(t *testing.T) {
	c, err := Parse("c.yaml", []byte(azureConfig))
	require.NoError(t, err)
	assert.Equal(t, KindOpenAI, c.Providers["oai"].Kind, "kind defaults to openai")
	assert.False(t, c.Providers["oai"].Azure())
	assert.True(t, c.Providers["azure-eu"].Azure())
	assert.Equal(t, "2024-10-21", c.Providers["azure-eu"].APIVersion)
	assert.Equal(t, "my-gpt4o", c.Deployment("gpt-4o", "azure-eu", "gpt-4o"))
	assert.Equal(t, "gpt-4o-mini", c.Deployment("mini", "azure-eu", "gpt-4o-mini"), "deployment defaults to the model")
	assert.Equal(t, "my-gpt4o", c.Deployment("", "azure-eu", "gpt-4o"), "no route: the alias that lists it")
}

func TestAzureProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown kind", `
providers:
  p: {base_url: "http://127.0.0.1:1", kind: bedrock}
models:
  m: {targets: [{provider: p, model: x}]}
`, []string{`c.yaml:3: providers.p.kind: must be openai or azure, got "bedrock"`}},
		{"azure without api_version", `
providers:
  p:
    kind: azure
    base_url: https://r.openai.azure.com
models:
  m: {targets: [{provider: p, model: x}]}
`, []string{"c.yaml:3: providers.p.api_version: required for kind: azure"}},
		{"bad api_version and a base path", `
providers:
  p:
    kind: azure
    base_url: https://r.openai.azure.com/openai
    api_version: latest
models:
  m: {targets: [{provider: p, model: x}]}
`, []string{`c.yaml:6: providers.p.api_version: "latest" is not an Azure OpenAI api-version`,
			`c.yaml:5: providers.p.base_url: kind azure takes the resource endpoint without a path`}},
		{"api_version on openai", `
providers:
  p: {base_url: "http://127.0.0.1:1", api_version: 2024-10-21}
models:
  m: {targets: [{provider: p, model: x}]}
`, []string{"c.yaml:3: providers.p.api_version: only for kind: azure"}},
		{"deployment on openai and a bad deployment", `
providers:
  p: {base_url: "http://127.0.0.1:1"}
  a: {kind: azure, base_url: "https://r.openai.azure.com", api_version: 2024-10-21}
models:
  m:
    targets:
      - {provider: p, model: x, deployment: d}
      - {provider: a, model: x, deployment: "../x"}
`, []string{"c.yaml:8: models.m.targets[0].deployment: only for a provider of kind: azure",
			`c.yaml:9: models.m.targets[1].deployment: "../x" is not a deployment name`}},
		{"two deployments for one provider and model", `
providers:
  a: {kind: azure, base_url: "https://r.openai.azure.com", api_version: 2024-10-21}
models:
  m:
    targets:
      - {provider: a, model: x, deployment: d1}
      - {provider: a, model: x, deployment: d2}
`, []string{`c.yaml:8: models.m.targets[1].deployment: targets[0] has the same provider and model with deployment "d1"`}},
	}
	tests = append(tests, struct {
		name string
		yaml string
		want []string
	}{"automatic eval of an Azure alias", azureConfig + evalTenants + "eval:\n  auto:\n    tenant: ops\n    aliases:\n      mini: {set: s.yaml}\n",
		[]string{`eval.auto.aliases.mini: alias "mini": automatic evals do not support a first target of kind: azure (azure-eu) yet`}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.yaml))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

package extproc

import (
	"testing"

	"github.com/tollgate-dev/tollgate/pkg/config"
)

// BenchmarkAzurePath is an Azure attempt's path rewrite after an earlier
// Azure attempt: the client's path recovered from the shared header map,
// then the deployment path with api-version built.
func BenchmarkAzurePath(b *testing.B) {
	providers := map[string]config.Provider{
		"groq": {BaseURL: "https://api.groq.com/openai"},
		"az":   {Kind: config.KindAzure, BaseURL: "https://r.openai.azure.com", APIVersion: "2024-10-21"},
	}
	seen := "/openai/deployments/my-gpt4o/chat/completions?trace=1&api-version=2024-10-21"
	b.ReportAllocs()
	for b.Loop() {
		p := clientPath(seen, providers)
		if azurePath(p, "my-gpt4o", "2024-10-21") != seen {
			b.Fatal("round trip changed the path")
		}
	}
}

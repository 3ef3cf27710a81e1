package meter

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func usd(f float64) Money { return MoneyFromUSD(f) }

func TestBuiltinCatalogLookup(t *testing.T) {
	c, err := BuiltinCatalog()
	require.NoError(t, err)
	now := day("2026-11-27")

	tests := []struct {
		name            string
		provider, model string
		at              time.Time
		want            Price
		wantOK          bool
	}{
		{"exact", "openai", "gpt-4o-mini", now, Price{Input: usd(0.15), Output: usd(0.60), CachedInput: usd(0.075), Effective: day("2024-07-18")}, true},
		{"provider case-insensitive", "OpenAI", "gpt-4.1", now, Price{Input: usd(2), Output: usd(8), CachedInput: usd(0.5), Effective: day("2025-04-14")}, true},
		{"dated snapshot maps to family", "openai", "gpt-4o-2024-08-06", now, Price{Input: usd(2.5), Output: usd(10), CachedInput: usd(1.25), Effective: day("2024-10-02")}, true},
		{"exact snapshot entry wins", "openai", "gpt-4o-2024-05-13", now, Price{Input: usd(5), Output: usd(15), CachedInput: usd(5), Effective: day("2024-05-13")}, true},
		{"older effective entry", "openai", "gpt-4o", day("2024-06-01"), Price{Input: usd(5), Output: usd(15), CachedInput: usd(5), Effective: day("2024-05-13")}, true},
		{"effective boundary is inclusive", "openai", "o3", day("2025-06-10"), Price{Input: usd(2), Output: usd(8), CachedInput: usd(0.5), Effective: day("2025-06-10")}, true},
		{"just before a price change", "openai", "o3", day("2025-06-10").Add(-time.Nanosecond), Price{Input: usd(10), Output: usd(40), CachedInput: usd(2.5), Effective: day("2025-04-16")}, true},
		{"before first entry", "openai", "gpt-4.1", day("2025-01-01"), Price{}, false},
		{"anthropic snapshot", "anthropic", "claude-sonnet-4-20250514", now, Price{Input: usd(3), Output: usd(15), CachedInput: usd(0.3), Effective: day("2025-05-22")}, true},
		{"anthropic alias", "anthropic", "claude-sonnet-4-0", now, Price{Input: usd(3), Output: usd(15), CachedInput: usd(0.3), Effective: day("2025-05-22")}, true},
		{"anthropic -latest", "anthropic", "claude-3-5-haiku-latest", now, Price{Input: usd(0.8), Output: usd(4), CachedInput: usd(0.08), Effective: day("2024-10-22")}, true},
		{"gemini version suffix", "google", "gemini-2.0-flash-001", now, Price{Input: usd(0.1), Output: usd(0.4), CachedInput: usd(0.025), Effective: day("2025-02-05")}, true},
		{"mistral dated snapshot", "mistral", "mistral-large-2411", now, Price{Input: usd(2), Output: usd(6), CachedInput: usd(2), Effective: day("2024-11-18")}, true},
		{"no cached discount charges input", "groq", "llama-3.3-70b-versatile", now, Price{Input: usd(0.59), Output: usd(0.79), CachedInput: usd(0.59), Effective: day("2024-12-06")}, true},
		{"deepseek newest", "deepseek", "deepseek-chat", now, Price{Input: usd(0.28), Output: usd(0.42), CachedInput: usd(0.028), Effective: day("2025-09-29")}, true},
		{"unknown model", "openai", "gpt-99", now, Price{}, false},
		{"unknown provider", "acme", "gpt-4o", now, Price{}, false},
		{"suffix stripped only once", "openai", "gpt-4o-2024-08-06-latest", now, Price{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.Lookup(tt.provider, tt.model, tt.at)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestBuiltinCatalogCoversBrief(t *testing.T) {
	c, err := BuiltinCatalog()
	require.NoError(t, err)
	now := day("2026-11-27")
	models := map[string][]string{
		"openai": {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3", "o3-mini", "o4-mini",
			"gpt-3.5-turbo", "text-embedding-3-small", "text-embedding-3-large"},
		"anthropic": {"claude-3-5-sonnet", "claude-3-5-haiku", "claude-3-7-sonnet", "claude-sonnet-4", "claude-opus-4",
			"claude-haiku-4-5", "claude-3-7-sonnet-20250219", "claude-3-5-sonnet-20241022"},
		"google":   {"gemini-1.5-pro", "gemini-1.5-flash", "gemini-2.0-flash", "gemini-2.5-pro", "gemini-2.5-flash"},
		"mistral":  {"mistral-large-latest", "mistral-small-latest", "mistral-medium-latest"},
		"groq":     {"llama-3.3-70b-versatile", "llama-3.1-8b-instant"},
		"deepseek": {"deepseek-chat", "deepseek-reasoner"},
	}
	for provider, names := range models {
		for _, m := range names {
			p, ok := c.Lookup(provider, m, now)
			if assert.True(t, ok, "%s/%s", provider, m) {
				assert.Positive(t, p.Input, "%s/%s input price", provider, m)
			}
		}
	}
}

func TestMaxOutputTokens(t *testing.T) {
	c, err := BuiltinCatalog()
	require.NoError(t, err)
	tests := []struct {
		provider, model string
		want            int
	}{
		{"openai", "gpt-4o", 16384}, // newest entry, not the 2024-05 one
		{"openai", "gpt-4o-2024-11-20", 16384},
		{"openai", "o4-mini", 100000},
		{"anthropic", "claude-opus-4-20250514", 32000},
		{"openai", "text-embedding-3-small", 0},
		{"openai", "unknown", 0},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			assert.Equal(t, tt.want, c.MaxOutputTokens(tt.provider, tt.model))
		})
	}
}

func TestCatalogOverride(t *testing.T) {
	base, err := NewCatalog([]Entry{
		{Provider: "openai", Model: "gpt-4o", Effective: day("2024-10-02"), InputPerM: 2.5, OutputPerM: 10, CachedInputPerM: 1.25, MaxOutputTokens: 16384},
		{Provider: "openai", Model: "gpt-4o-mini", Effective: day("2024-07-18"), InputPerM: 0.15, OutputPerM: 0.6},
	})
	require.NoError(t, err)

	over, err := base.Override([]Entry{
		// same provider/model/effective: replaces
		{Provider: "openai", Model: "gpt-4o", Effective: day("2024-10-02"), InputPerM: 2, OutputPerM: 9},
		// new effective date: adds a version
		{Provider: "openai", Model: "gpt-4o-mini", Effective: day("2026-01-01"), InputPerM: 0.1, OutputPerM: 0.5},
		// new model
		{Provider: "local", Model: "llama", Effective: time.Time{}, InputPerM: 0, OutputPerM: 0},
	})
	require.NoError(t, err)

	tests := []struct {
		name            string
		cat             *Catalog
		provider, model string
		at              time.Time
		want            Price
		wantOK          bool
	}{
		{"replaced", over, "openai", "gpt-4o", day("2025-01-01"), Price{Input: usd(2), Output: usd(9), CachedInput: usd(2), Effective: day("2024-10-02")}, true},
		{"base unchanged", base, "openai", "gpt-4o", day("2025-01-01"), Price{Input: usd(2.5), Output: usd(10), CachedInput: usd(1.25), Effective: day("2024-10-02")}, true},
		{"old version kept", over, "openai", "gpt-4o-mini", day("2025-12-31"), Price{Input: usd(0.15), Output: usd(0.6), CachedInput: usd(0.15), Effective: day("2024-07-18")}, true},
		{"new version", over, "openai", "gpt-4o-mini", day("2026-01-01"), Price{Input: usd(0.1), Output: usd(0.5), CachedInput: usd(0.1), Effective: day("2026-01-01")}, true},
		{"new model, zero effective", over, "local", "llama", day("2000-01-01"), Price{}, true},
		{"new model absent from base", base, "local", "llama", day("2026-01-01"), Price{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.cat.Lookup(tt.provider, tt.model, tt.at)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	// The override stated no cap, so the replaced entry's cap is gone too.
	assert.Equal(t, 0, over.MaxOutputTokens("openai", "gpt-4o"))
	assert.Equal(t, 16384, base.MaxOutputTokens("openai", "gpt-4o"))
}

func TestNewCatalogValidation(t *testing.T) {
	_, err := NewCatalog([]Entry{
		{Provider: "", Model: "m", InputPerM: 1},
		{Provider: "p", Model: "m", InputPerM: -1},
		{Provider: "p", Model: "ok", Effective: day("2025-01-01"), InputPerM: 1},
		{Provider: "P", Model: "ok", Effective: day("2025-01-01"), InputPerM: 2},
		{Provider: "p", Model: "cap", MaxOutputTokens: -5},
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidEntry)
	assert.ErrorIs(t, err, ErrDuplicateEntry)
	// Every problem is reported.
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	assert.Len(t, joined.Unwrap(), 4)
}

func TestParseEntries(t *testing.T) {
	good := []byte(`
providers:
  - provider: acme
    source: test
    models:
      - {model: a1, aliases: [a1-latest-alias], effective: 2025-03-01, input: 1.5, output: 2, cached_input: 0.5, max_output_tokens: 10}
      - {model: a1, effective: "2025-06-01T12:00:00Z", input: 1, output: 2}
`)
	entries, err := ParseEntries(good)
	require.NoError(t, err)
	require.Len(t, entries, 3)
	assert.Equal(t, Entry{Provider: "acme", Model: "a1-latest-alias", Effective: day("2025-03-01"),
		InputPerM: 1.5, OutputPerM: 2, CachedInputPerM: 0.5, MaxOutputTokens: 10}, entries[1])
	assert.Equal(t, time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), entries[2].Effective)

	tests := []struct {
		name string
		data string
	}{
		{"unknown key", "providers:\n  - provider: a\n    models:\n      - {model: m, effective: 2025-01-01, inptu: 1}\n"},
		{"bad date", "providers:\n  - provider: a\n    models:\n      - {model: m, effective: yesterday, input: 1}\n"},
		{"not yaml", "providers: [\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEntries([]byte(tt.data))
			assert.Error(t, err)
		})
	}
}

func FuzzParseEntries(f *testing.F) {
	f.Add(builtinPrices)
	f.Add([]byte("providers:\n  - provider: a\n    models:\n      - {model: m, effective: 2025-01-01, input: 1}\n"))
	f.Add([]byte("providers: [{provider: x, models: [{model: y, effective: '2025-01-01T00:00:00Z', input: .nan}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseEntries(data)
		if err != nil {
			return
		}
		c, err := NewCatalog(entries)
		if err != nil {
			return
		}
		for _, e := range c.Entries() {
			p, ok := c.Lookup(e.Provider, e.Model, e.Effective)
			if !ok || p.Input < 0 || p.Output < 0 || p.CachedInput < 0 {
				t.Fatalf("entry %+v: lookup %+v %v", e, p, ok)
			}
		}
	})
}

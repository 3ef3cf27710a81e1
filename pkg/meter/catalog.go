package meter

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Price is the price of one model at one point in time, in Money per one
// million tokens.
type Price struct {
	Input       Money // per 1M uncached input tokens
	Output      Money // per 1M output tokens (reasoning tokens included)
	CachedInput Money // per 1M input tokens served from the provider's prompt cache
	Effective   time.Time
}

// Entry is one versioned price as written in configuration or in the built-in
// data file: USD per one million tokens, valid from Effective until the next
// entry for the same provider and model.
//
// CachedInputPerM == 0 means the model has no cached-input discount: cached
// input tokens are charged at InputPerM. MaxOutputTokens == 0 means unknown.
type Entry struct {
	Provider        string
	Model           string
	Effective       time.Time
	InputPerM       float64
	OutputPerM      float64
	CachedInputPerM float64
	MaxOutputTokens int
}

// Catalog is an immutable, versioned price list. It is safe for concurrent
// use; Override returns a new Catalog.
//
// Model names are resolved in two steps:
//  1. an exact match on (provider, model); providers are compared
//     case-insensitively, models exactly;
//  2. otherwise one trailing snapshot or alias suffix is removed and the
//     result is matched exactly: a date "-2024-08-06" (OpenAI), "-20241022"
//     (Anthropic), a four-digit "-0125"/"-2411" (OpenAI, Mistral), a
//     three-digit version "-001" (Gemini), or "-latest".
//
// So "gpt-4o-2024-08-06" is priced as "gpt-4o" unless the catalog has an exact
// entry for the snapshot (it does for "gpt-4o-2024-05-13", which kept its
// launch price). Within the resolved name, Lookup picks the entry with the
// newest Effective that is not after the requested time.
type Catalog struct {
	models map[modelKey]*modelPrices
	// entries keeps the validated input so Override can merge onto it.
	entries []Entry
}

type modelKey struct{ provider, model string }

type modelPrices struct {
	// versions sorted by Effective ascending.
	versions  []Price
	maxOutput int
}

// Validation errors, joined by NewCatalog.
var (
	ErrInvalidEntry   = errors.New("invalid price entry")
	ErrDuplicateEntry = errors.New("duplicate price entry")
)

// NewCatalog validates entries and builds a catalog. Every problem is
// reported, joined with errors.Join.
func NewCatalog(entries []Entry) (*Catalog, error) {
	var errs []error
	seen := make(map[string]int, len(entries))
	clean := make([]Entry, 0, len(entries))
	for i, e := range entries {
		e.Provider = strings.ToLower(strings.TrimSpace(e.Provider))
		e.Model = strings.TrimSpace(e.Model)
		e.Effective = e.Effective.UTC()
		if err := validateEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("entry %d (%s/%s): %w", i, e.Provider, e.Model, err))
			continue
		}
		k := entryKey(e)
		if j, ok := seen[k]; ok {
			errs = append(errs, fmt.Errorf("entry %d (%s/%s effective %s) repeats entry %d: %w",
				i, e.Provider, e.Model, e.Effective.Format(time.DateOnly), j, ErrDuplicateEntry))
			continue
		}
		seen[k] = i
		clean = append(clean, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return build(clean), nil
}

// Override returns a new catalog with entries merged in: an entry with the same
// provider, model and effective time as an existing one replaces it; others are
// added. The receiver is unchanged.
func (c *Catalog) Override(entries []Entry) (*Catalog, error) {
	over, err := NewCatalog(entries)
	if err != nil {
		return nil, fmt.Errorf("override: %w", err)
	}
	replaced := make(map[string]bool, len(over.entries))
	for _, e := range over.entries {
		replaced[entryKey(e)] = true
	}
	merged := make([]Entry, 0, len(c.entries)+len(over.entries))
	for _, e := range c.entries {
		if !replaced[entryKey(e)] {
			merged = append(merged, e)
		}
	}
	merged = append(merged, over.entries...)
	return build(merged), nil
}

// Lookup returns the price of (provider, model) in force at time at. The
// second result is false when the model is unknown or has no entry effective
// at or before at.
func (c *Catalog) Lookup(provider, model string, at time.Time) (Price, bool) {
	mp := c.resolve(provider, model)
	if mp == nil {
		return Price{}, false
	}
	// Index of the first version effective after at; the one before it wins.
	i := sort.Search(len(mp.versions), func(i int) bool { return mp.versions[i].Effective.After(at) })
	if i == 0 {
		return Price{}, false
	}
	return mp.versions[i-1], true
}

// MaxOutputTokens returns the model's output-token cap (from its newest entry
// that states one), for worst-case reservations. 0 means unknown.
func (c *Catalog) MaxOutputTokens(provider, model string) int {
	if mp := c.resolve(provider, model); mp != nil {
		return mp.maxOutput
	}
	return 0
}

// Entries returns a copy of the catalog's entries, sorted by provider, model
// and effective time.
func (c *Catalog) Entries() []Entry {
	out := make([]Entry, len(c.entries))
	copy(out, c.entries)
	return out
}

func (c *Catalog) resolve(provider, model string) *modelPrices {
	provider = strings.ToLower(strings.TrimSpace(provider))
	if mp, ok := c.models[modelKey{provider, model}]; ok {
		return mp
	}
	if base, ok := stripSnapshot(model); ok {
		return c.models[modelKey{provider, base}]
	}
	return nil
}

// snapshotSuffix matches the dated or versioned suffixes providers append to a
// model family name.
var snapshotSuffix = regexp.MustCompile(`-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{3}|latest)$`)

// stripSnapshot removes one snapshot suffix from model.
func stripSnapshot(model string) (string, bool) {
	loc := snapshotSuffix.FindStringIndex(model)
	if loc == nil || loc[0] == 0 {
		return "", false
	}
	return model[:loc[0]], true
}

func entryKey(e Entry) string {
	return e.Provider + "\x00" + e.Model + "\x00" + e.Effective.Format(time.RFC3339Nano)
}

func validateEntry(e Entry) error {
	var errs []error
	if e.Provider == "" {
		errs = append(errs, errors.New("provider is empty"))
	}
	if e.Model == "" {
		errs = append(errs, errors.New("model is empty"))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"input", e.InputPerM}, {"output", e.OutputPerM}, {"cached_input", e.CachedInputPerM}} {
		// 1e6 USD per 1M tokens is far above any real price and keeps the
		// per-1M amount well inside Money's range.
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 || f.v > 1e6 {
			errs = append(errs, fmt.Errorf("%s price %v must be a finite number in [0, 1e6] USD per 1M tokens", f.name, f.v))
		}
	}
	if e.MaxOutputTokens < 0 {
		errs = append(errs, fmt.Errorf("max_output_tokens %d is negative", e.MaxOutputTokens))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidEntry, errors.Join(errs...))
}

// build indexes validated, de-duplicated entries.
func build(entries []Entry) *Catalog {
	sorted := make([]Entry, len(entries))
	copy(sorted, entries)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.Effective.Before(b.Effective)
	})
	c := &Catalog{models: make(map[modelKey]*modelPrices), entries: sorted}
	for _, e := range sorted {
		k := modelKey{e.Provider, e.Model}
		mp := c.models[k]
		if mp == nil {
			mp = &modelPrices{}
			c.models[k] = mp
		}
		p := Price{
			Input:       MoneyFromUSD(e.InputPerM),
			Output:      MoneyFromUSD(e.OutputPerM),
			CachedInput: MoneyFromUSD(e.CachedInputPerM),
			Effective:   e.Effective,
		}
		if e.CachedInputPerM == 0 {
			p.CachedInput = p.Input
		}
		mp.versions = append(mp.versions, p)
		if e.MaxOutputTokens > 0 {
			mp.maxOutput = e.MaxOutputTokens // ascending order: newest stated value wins
		}
	}
	return c
}

//go:embed prices.yaml
var builtinPrices []byte

// BuiltinCatalog returns the catalog embedded in the binary (prices.yaml in
// this package): public list prices of common OpenAI, Anthropic, Google,
// Mistral, Groq and DeepSeek models, standard tier, with their sources noted
// in the file.
func BuiltinCatalog() (*Catalog, error) {
	entries, err := ParseEntries(builtinPrices)
	if err != nil {
		return nil, fmt.Errorf("builtin catalog: %w", err)
	}
	return NewCatalog(entries)
}

// priceFile is the schema of prices.yaml.
type priceFile struct {
	Providers []struct {
		Provider string      `yaml:"provider"`
		Source   string      `yaml:"source"`
		Checked  string      `yaml:"checked"`
		Notes    string      `yaml:"notes"`
		Models   []priceLine `yaml:"models"`
	} `yaml:"providers"`
}

type priceLine struct {
	Model           string   `yaml:"model"`
	Aliases         []string `yaml:"aliases"`
	Effective       string   `yaml:"effective"`
	Input           float64  `yaml:"input"`
	Output          float64  `yaml:"output"`
	CachedInput     float64  `yaml:"cached_input"`
	MaxOutputTokens int      `yaml:"max_output_tokens"`
}

// ParseEntries decodes a price file in the format of the embedded prices.yaml:
//
//	providers:
//	  - provider: openai
//	    source: https://openai.com/api/pricing
//	    checked: 2026-11-27
//	    models:
//	      - {model: gpt-4o, aliases: [gpt-4o-alias], effective: 2024-10-02,
//	         input: 2.50, output: 10.00, cached_input: 1.25, max_output_tokens: 16384}
//
// Prices are USD per 1M tokens; effective is a date (UTC midnight) or an
// RFC 3339 time. Each alias becomes an entry with the same prices. Unknown keys
// are errors.
func ParseEntries(data []byte) ([]Entry, error) {
	var f priceFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode price file: %w", err)
	}
	var entries []Entry
	var errs []error
	for _, p := range f.Providers {
		for _, m := range p.Models {
			eff, err := ParseEffective(m.Effective)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", p.Provider, m.Model, err))
				continue
			}
			for _, name := range append([]string{m.Model}, m.Aliases...) {
				entries = append(entries, Entry{
					Provider:        p.Provider,
					Model:           name,
					Effective:       eff,
					InputPerM:       m.Input,
					OutputPerM:      m.Output,
					CachedInputPerM: m.CachedInput,
					MaxOutputTokens: m.MaxOutputTokens,
				})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return entries, nil
}

// ParseEffective parses an effective date: "2006-01-02" (midnight UTC) or an
// RFC 3339 timestamp.
func ParseEffective(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("effective %q: want YYYY-MM-DD or RFC 3339", s)
	}
	return t.UTC(), nil
}

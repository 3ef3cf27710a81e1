package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrInvalidSet is wrapped by every golden-set validation error.
var ErrInvalidSet = errors.New("eval: invalid golden set")

// Set is a golden set: named cases run through one model.
type Set struct {
	Name  string `yaml:"name" json:"name"`
	Cases []Case `yaml:"cases" json:"cases"`
}

// Message is one chat message of a case's input.
type Message struct {
	Role    string `yaml:"role" json:"role"`
	Content string `yaml:"content" json:"content"`
}

// Case is one golden example.
type Case struct {
	ID string `yaml:"id" json:"id"`
	// Prompt is a single user message; Messages is a whole conversation.
	// Exactly one of them is set.
	Prompt   string    `yaml:"prompt,omitempty" json:"prompt,omitempty"`
	Messages []Message `yaml:"messages,omitempty" json:"messages,omitempty"`
	// Expected is the reference answer shown to the judge.
	Expected string `yaml:"expected,omitempty" json:"expected,omitempty"`
	// Criteria is the rubric the judge applies. A case with Expected or
	// Criteria is judged when a judge is configured.
	Criteria string `yaml:"criteria,omitempty" json:"criteria,omitempty"`
	// Checks are deterministic assertions on the reply.
	Checks []Check `yaml:"checks,omitempty" json:"checks,omitempty"`
	// MaxTokens caps the reply (0 = the endpoint's default).
	MaxTokens int64 `yaml:"max_tokens,omitempty" json:"max_tokens,omitempty"`
}

// Check kinds.
const (
	CheckExact      = "exact"
	CheckContains   = "contains"
	CheckRegex      = "regex"
	CheckJSONSchema = "json_schema"
)

// Check is one deterministic assertion on a reply.
type Check struct {
	// Type is exact, contains, regex or json_schema.
	Type string `yaml:"type" json:"type"`
	// Value is the text (exact, contains) or pattern (regex).
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
	// Schema is the JSON schema (json_schema); see [ValidateSchema] for the
	// supported subset.
	Schema map[string]any `yaml:"schema,omitempty" json:"schema,omitempty"`
	// IgnoreCase makes exact and contains case-insensitive.
	IgnoreCase bool `yaml:"ignore_case,omitempty" json:"ignore_case,omitempty"`

	re *regexp.Regexp
}

// Name identifies a check within its case: "<index>:<type>".
func (c *Check) Name(i int) string { return fmt.Sprintf("%d:%s", i, c.Type) }

// LoadSet reads a golden set from path: .jsonl (one Case per line, the set
// named after the file) or YAML/JSON (a mapping with name and cases, or a
// bare list of cases).
func LoadSet(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read golden set: %w", err)
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	var s *Set
	if strings.EqualFold(filepath.Ext(path), ".jsonl") {
		s, err = parseJSONL(data)
	} else {
		s, err = parseYAML(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Name == "" {
		s.Name = base
	}
	if err := s.compile(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSet parses a golden set in YAML (or JSON, a YAML subset) and
// validates it.
func ParseSet(data []byte) (*Set, error) {
	s, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	if err := s.compile(); err != nil {
		return nil, err
	}
	return s, nil
}

func parseYAML(data []byte) (*Set, error) {
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSet, err)
	}
	s := &Set{}
	if len(node.Content) == 0 {
		return s, nil
	}
	root := node.Content[0]
	var err error
	if root.Kind == yaml.SequenceNode {
		err = root.Decode(&s.Cases)
	} else {
		err = root.Decode(s)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSet, err)
	}
	return s, nil
}

func parseJSONL(data []byte) (*Set, error) {
	s := &Set{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var c Case
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrInvalidSet, line, err)
		}
		s.Cases = append(s.Cases, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSet, err)
	}
	return s, nil
}

// compile validates every case and compiles regex checks; it reports every
// problem at once.
func (s *Set) compile() error {
	var errs []error
	if len(s.Cases) == 0 {
		errs = append(errs, errors.New("no cases"))
	}
	seen := make(map[string]bool, len(s.Cases))
	for i := range s.Cases {
		c := &s.Cases[i]
		where := fmt.Sprintf("case %d (%q)", i, c.ID)
		switch {
		case c.ID == "":
			errs = append(errs, fmt.Errorf("%s: missing id", where))
		case seen[c.ID]:
			errs = append(errs, fmt.Errorf("%s: duplicate id", where))
		}
		seen[c.ID] = true
		if (c.Prompt == "") == (len(c.Messages) == 0) {
			errs = append(errs, fmt.Errorf("%s: exactly one of prompt and messages is required", where))
		}
		for j, m := range c.Messages {
			switch m.Role {
			case "system", "developer", "user", "assistant":
			default:
				errs = append(errs, fmt.Errorf("%s: message %d: unknown role %q", where, j, m.Role))
			}
		}
		if len(c.Checks) == 0 && c.Expected == "" && c.Criteria == "" {
			errs = append(errs, fmt.Errorf("%s: nothing to score (no checks, expected or criteria)", where))
		}
		for j := range c.Checks {
			if err := c.Checks[j].compile(); err != nil {
				errs = append(errs, fmt.Errorf("%s: check %d: %w", where, j, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidSet, errors.Join(errs...))
	}
	return nil
}

func (c *Check) compile() error {
	switch c.Type {
	case CheckExact, CheckContains:
		if c.Type == CheckContains && c.Value == "" {
			return errors.New("contains needs a value")
		}
	case CheckRegex:
		re, err := regexp.Compile(c.Value)
		if err != nil {
			return fmt.Errorf("regex: %w", err)
		}
		c.re = re
	case CheckJSONSchema:
		if c.Schema == nil {
			return errors.New("json_schema needs a schema")
		}
		if err := checkSchema(c.Schema); err != nil {
			return fmt.Errorf("json_schema: %w", err)
		}
	default:
		return fmt.Errorf("unknown check type %q (want exact, contains, regex or json_schema)", c.Type)
	}
	return nil
}

// Eval runs the check on a reply; the error explains a failure.
func (c *Check) Eval(reply string) error {
	switch c.Type {
	case CheckExact:
		got, want := strings.TrimSpace(reply), strings.TrimSpace(c.Value)
		if c.IgnoreCase {
			got, want = strings.ToLower(got), strings.ToLower(want)
		}
		if got != want {
			return fmt.Errorf("reply is not exactly %q", c.Value)
		}
	case CheckContains:
		got, want := reply, c.Value
		if c.IgnoreCase {
			got, want = strings.ToLower(got), strings.ToLower(want)
		}
		if !strings.Contains(got, want) {
			return fmt.Errorf("reply does not contain %q", c.Value)
		}
	case CheckRegex:
		re := c.re
		if re == nil {
			var err error
			if re, err = regexp.Compile(c.Value); err != nil {
				return fmt.Errorf("regex: %w", err)
			}
		}
		if !re.MatchString(reply) {
			return fmt.Errorf("reply does not match /%s/", c.Value)
		}
	case CheckJSONSchema:
		v, err := decodeJSONReply(reply)
		if err != nil {
			return err
		}
		if err := ValidateSchema(c.Schema, v); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown check type %q", c.Type)
	}
	return nil
}

// decodeJSONReply decodes a reply as JSON, accepting one surrounding
// markdown code fence (```json ... ```), which models often add.
func decodeJSONReply(reply string) (any, error) {
	s := strings.TrimSpace(reply)
	if strings.HasPrefix(s, "```") && strings.HasSuffix(s, "```") && len(s) >= 6 {
		s = strings.TrimSpace(s[3 : len(s)-3])
		s = strings.TrimPrefix(s, "json")
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("reply is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("reply has trailing data after the JSON value")
	}
	return v, nil
}

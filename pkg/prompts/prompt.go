package prompts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Request headers that select a prompt and carry its variables.
const (
	HeaderPrompt = "x-tollgate-prompt"
	HeaderVars   = "x-tollgate-prompt-vars"
)

// Errors of Resolve, ParseVars and Apply; all of them mean HTTP 400.
var (
	ErrUnknownPrompt    = errors.New("unknown prompt")
	ErrMissingVariable  = errors.New("missing prompt variable")
	ErrUnknownVariable  = errors.New("unknown prompt variable")
	ErrInvalidVariables = errors.New("invalid prompt variables")
	ErrModelNotAllowed  = errors.New("model not allowed for prompt")
	ErrNotChat          = errors.New("prompt needs a chat request with a messages array")
)

// Message is one injected chat message (system prompt or few-shot example).
type Message struct {
	Role    string
	Content string // template text with {{variable}} placeholders
}

// Variable is a template variable; Required ones have no default.
type Variable struct {
	Name     string
	Default  string
	Required bool
}

// Prompt is one version of a prompt template. It is immutable and shared.
type Prompt struct {
	Name      string
	Version   int
	Current   bool // the version a bare name resolves to
	System    string
	FewShot   []Message
	Variables []Variable
	// Allowed lists the model aliases the prompt may be used with; empty
	// means any.
	Allowed []string
	// MaxTokens caps (and defaults) max_tokens; 0 means no cap.
	MaxTokens int64
	Changelog string
	File      string
	Line      int

	msgs []compiled // system (if any) then few-shot, compiled
	vars map[string]int
}

// Ref is "name@version", the form recorded in the audit trail.
func (p *Prompt) Ref() string { return p.Name + "@" + strconv.Itoa(p.Version) }

// compiled is one message as JSON pieces: the parts between placeholders
// are pre-escaped JSON string content; vars[i] sits between lit[i] and lit[i+1].
type compiled struct {
	prefix []byte   // {"role":"...","content":"
	lit    [][]byte // len(vars)+1
	vars   []int    // index into Prompt.Variables
}

// placeholders splits s into literal parts and variable names.
func placeholders(s string) (lits []string, names []string, err error) {
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			return append(lits, s), names, nil
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			return nil, nil, errors.New("unclosed {{")
		}
		name := strings.TrimSpace(s[i+2 : i+2+j])
		if !validName(name) {
			return nil, nil, fmt.Errorf("bad placeholder {{%s}}", s[i+2:i+2+j])
		}
		lits = append(lits, s[:i])
		names = append(names, name)
		s = s[i+2+j+2:]
	}
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || c == '-' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// jsonEscape returns s escaped as JSON string content (no quotes), leaving
// <, > and & as they are.
func jsonEscape(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return b[1 : len(b)-1]
}

// compile prepares the injected messages; it reports placeholders that are
// not declared variables.
func (p *Prompt) compile() error {
	p.vars = make(map[string]int, len(p.Variables))
	for i, v := range p.Variables {
		p.vars[v.Name] = i
	}
	var msgs []Message
	if p.System != "" {
		msgs = append(msgs, Message{Role: "system", Content: p.System})
	}
	msgs = append(msgs, p.FewShot...)
	var errs []error
	for mi, m := range msgs {
		lits, names, err := placeholders(m.Content)
		where := "system"
		if p.System == "" || mi > 0 {
			where = "few_shot[" + strconv.Itoa(mi-boolInt(p.System != "")) + "]"
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		c := compiled{prefix: []byte(`{"role":"` + string(jsonEscape(m.Role)) + `","content":"`)}
		for _, l := range lits {
			c.lit = append(c.lit, jsonEscape(l))
		}
		for _, n := range names {
			vi, ok := p.vars[n]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: placeholder {{%s}} is not a declared variable", where, n))
				continue
			}
			c.vars = append(c.vars, vi)
		}
		p.msgs = append(p.msgs, c)
	}
	return errors.Join(errs...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ParseVars decodes the x-tollgate-prompt-vars header: a JSON object whose
// values are strings (numbers and booleans are taken as written). An empty
// header is no variables.
func ParseVars(header string) (map[string]string, error) {
	if strings.TrimSpace(header) == "" {
		return nil, nil
	}
	root := gjson.Parse(header)
	if !gjson.Valid(header) || !root.IsObject() {
		return nil, fmt.Errorf("%w: %s must be a JSON object", ErrInvalidVariables, HeaderVars)
	}
	vars := map[string]string{}
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		switch v.Type {
		case gjson.String:
			vars[k.Str] = v.Str
		case gjson.Number, gjson.True, gjson.False:
			vars[k.Str] = v.Raw
		default:
			err = fmt.Errorf("%w: %q must be a string", ErrInvalidVariables, k.Str)
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return vars, nil
}

// Apply renders the prompt with vars (defaults fill the gaps) and injects its
// system prompt and few-shot messages in front of the messages of body, an
// OpenAI chat request. It enforces the model constraints: the request's
// model (the alias the client named) must be allowed, and max_tokens (or
// max_completion_tokens) is capped at MaxTokens and set to it when absent.
func (p *Prompt) Apply(body []byte, vars map[string]string) ([]byte, error) {
	doc := string(body) // one copy; gjson offsets below index both
	root := gjson.Parse(doc)
	if !root.IsObject() {
		return nil, ErrNotChat
	}
	var f fields // one pass over the top-level keys
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "messages":
			f.messages = v
		case "model":
			f.model = v.Str
		case "max_tokens":
			f.maxTokens = v
		case "max_completion_tokens":
			f.maxCompletion = v
		}
		return true
	})
	msgs := f.messages
	if !msgs.IsArray() || msgs.Index <= 0 || doc[msgs.Index] != '[' {
		return nil, ErrNotChat
	}
	if len(p.Allowed) > 0 {
		model := f.model
		allowed := false
		for _, a := range p.Allowed {
			allowed = allowed || a == model
		}
		if !allowed {
			return nil, fmt.Errorf("%w: %s does not allow model %q (allowed: %s)", ErrModelNotAllowed, p.Ref(), model, strings.Join(p.Allowed, ", "))
		}
	}
	values, err := p.values(vars)
	if err != nil {
		return nil, err
	}
	// Build the new messages array: injected messages, then the client's.
	n := len(msgs.Raw) + 2
	for _, c := range p.msgs {
		n += len(c.prefix) + 3
		for _, l := range c.lit {
			n += len(l)
		}
		for _, vi := range c.vars {
			n += len(values[vi])
		}
	}
	arr := make([]byte, 0, n)
	arr = append(arr, '[')
	for _, c := range p.msgs {
		arr = append(arr, c.prefix...)
		for i, l := range c.lit {
			arr = append(arr, l...)
			if i < len(c.vars) {
				arr = append(arr, values[c.vars[i]]...)
			}
		}
		arr = append(arr, '"', '}', ',')
	}
	inner := strings.TrimSpace(msgs.Raw[1 : len(msgs.Raw)-1])
	if inner == "" {
		arr = arr[:len(arr)-1]
	}
	arr = append(arr, inner...)
	arr = append(arr, ']')
	edits := []edit{{at: msgs.Index, del: len(msgs.Raw), ins: arr}}
	if e, ok := p.maxTokensEdit(doc, f); ok {
		edits = append(edits, e)
	}
	return splice(body, edits), nil
}

// fields are the top-level request fields Apply reads.
type fields struct {
	model                              string
	messages, maxTokens, maxCompletion gjson.Result
}

// edit replaces del bytes at offset at with ins.
type edit struct {
	at, del int
	ins     []byte
}

// splice applies non-overlapping edits to b in one allocation.
func splice(b []byte, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].at < edits[j].at })
	n := len(b)
	for _, e := range edits {
		n += len(e.ins) - e.del
	}
	out := make([]byte, 0, n)
	pos := 0
	for _, e := range edits {
		out = append(out, b[pos:e.at]...)
		out = append(out, e.ins...)
		pos = e.at + e.del
	}
	return append(out, b[pos:]...)
}

// maxTokensEdit sets the request's limit to MaxTokens when it is absent,
// not a positive number, or above it. max_completion_tokens is used when
// the client sent it.
func (p *Prompt) maxTokensEdit(doc string, f fields) (edit, bool) {
	if p.MaxTokens <= 0 {
		return edit{}, false
	}
	field, cur := "max_tokens", f.maxTokens
	if f.maxCompletion.Exists() {
		field, cur = "max_completion_tokens", f.maxCompletion
	}
	if cur.Type == gjson.Number && cur.Int() > 0 && cur.Int() <= p.MaxTokens {
		return edit{}, false
	}
	val := strconv.AppendInt(nil, p.MaxTokens, 10)
	if cur.Exists() && cur.Index > 0 {
		return edit{at: cur.Index, del: len(cur.Raw), ins: val}, true
	}
	open := strings.IndexByte(doc, '{') // root is an object: it exists
	ins := append([]byte(`"`+field+`":`), val...)
	return edit{at: open + 1, ins: append(ins, ',')}, true
}

// values returns the JSON-escaped value of every variable, in declaration order.
func (p *Prompt) values(vars map[string]string) ([][]byte, error) {
	var unknown []string
	for k := range vars {
		if _, ok := p.vars[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: %s has no variable %s", ErrUnknownVariable, p.Ref(), strings.Join(unknown, ", "))
	}
	out := make([][]byte, len(p.Variables))
	var missing []string
	for i, v := range p.Variables {
		s, ok := vars[v.Name]
		switch {
		case ok:
		case v.Required:
			missing = append(missing, v.Name)
			continue
		default:
			s = v.Default
		}
		out[i] = jsonEscape(s)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s needs %s", ErrMissingVariable, p.Ref(), strings.Join(missing, ", "))
	}
	return out, nil
}

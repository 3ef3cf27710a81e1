package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	File string
	Line int
	Path string // dotted path of the offending key, e.g. models.gpt-4o.targets[0].provider
	Msg  string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc += ":" + strconv.Itoa(p.Line)
	}
	if p.Path != "" {
		return loc + ": " + p.Path + ": " + p.Msg
	}
	return loc + ": " + p.Msg
}

// Problems is every problem found in one config; it is the error Load returns.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// ErrInvalid is matched by errors.Is for every Problems error.
var ErrInvalid = errors.New("invalid config")

// Is lets errors.Is(err, ErrInvalid) match.
func (ps Problems) Is(target error) bool { return target == ErrInvalid }

// Load reads, decodes, defaults and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes, defaults and validates config bytes; name is used in messages.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{yamlProblem(name, err)}
	}
	lines := map[string]int{}
	indexLines(&root, "", lines)

	var cfg Config
	var ps Problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !isEOF(err) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, Problems{yamlProblem(name, err)}
		}
		// Unknown keys and wrong types: the rest was still decoded, so
		// validate it too and report everything at once.
		for _, e := range te.Errors {
			p := yamlProblem(name, errors.New(e))
			if p.Path == "" && p.Line > 0 && !strings.HasPrefix(p.Msg, "unknown key") {
				p.Path = pathAt(lines, p.Line)
			}
			ps = append(ps, p)
		}
	}
	ps = append(ps, scalarProblems(name, &root)...)
	cfg.Source = name
	cfg.lines = lines
	applyDefaults(&cfg)
	for _, p := range validate(&cfg) {
		p.File = name
		p.Line = lineOf(lines, p.Path)
		ps = append(ps, p)
	}
	if len(ps) > 0 {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
		return nil, ps
	}
	return &cfg, nil
}

// Line is the line of the key at the dotted path (e.g.
// "models.gpt-4o.targets[0].model") in the file the config was read from, or
// of its nearest ancestor present there; 0 when unknown.
func (c *Config) Line(path string) int { return lineOf(c.lines, path) }

// Set reports whether the key at the dotted path is written in the file
// (as opposed to absent and defaulted).
func (c *Config) Set(path string) bool {
	_, ok := c.lines[path]
	return ok
}

// Problem is a problem at the dotted path, located in the config's file.
func (c *Config) Problem(path, format string, args ...any) Problem {
	return Problem{File: c.Source, Line: c.Line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

func isEOF(err error) bool { return err != nil && err.Error() == "EOF" }

var yamlLine = regexp.MustCompile(`line (\d+): `)

// yamlProblem turns a yaml.v3 message ("line 7: field foo not found in type
// config.Listen") into a Problem with a file and line.
func yamlProblem(name string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: name, Msg: msg}
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		p.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
		p.Msg = msg[:m[0]] + msg[m[1]:]
	}
	p.Msg = strings.TrimPrefix(p.Msg, "unmarshal errors:\n  ")
	if m := typeMismatch.FindStringSubmatch(p.Msg); m != nil {
		// "cannot unmarshal !!str `true` into bool"
		val := m[2]
		if m[1] == "!!str" {
			val = strconv.Quote(val)
		}
		p.Msg = fmt.Sprintf("got %s %s where %s is expected", yamlKinds[m[1]], val, goKind(m[3]))
	}
	if strings.Contains(p.Msg, "not found in type") {
		// "field foo not found in type config.Listen" -> "unknown key \"foo\""
		if f := strings.Fields(p.Msg); len(f) > 1 && f[0] == "field" {
			p.Msg = fmt.Sprintf("unknown key %q", f[1])
		}
	}
	return p
}

var typeMismatch = regexp.MustCompile("^cannot unmarshal (!![a-z]+) `(.*)` into (.+)$")

var yamlKinds = map[string]string{
	"!!str": "the string", "!!int": "the number", "!!float": "the number", "!!bool": "the boolean",
	"!!map": "a mapping", "!!seq": "a list", "!!null": "null", "!!timestamp": "the date",
}

// goKind names a Go type for a config author.
func goKind(t string) string {
	switch {
	case t == "bool":
		return "true or false"
	case t == "time.Duration":
		return "a duration (e.g. 30s, 5m)"
	case t == "time.Time":
		return "a date (e.g. 2025-01-01)"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string" || strings.HasPrefix(t, "config."):
		if strings.HasPrefix(t, "config.") && t != "config.Mode" {
			return "a mapping (" + strings.TrimPrefix(t, "config.") + ")"
		}
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	}
	return t
}

// pathAt is the deepest key written on line, or "".
func pathAt(lines map[string]int, line int) string {
	best := ""
	for p, l := range lines {
		if l == line && (len(p) > len(best) || (len(p) == len(best) && p < best)) {
			best = p
		}
	}
	return best
}

// indexLines records the line of every mapping key and sequence item by dotted path.
func indexLines(n *yaml.Node, path string, out map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexLines(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			out[p] = k.Line
			indexLines(v, p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			out[p] = c.Line
			indexLines(c, p, out)
		}
	}
}

// lineOf finds the line of path or of its nearest ancestor present in the file.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

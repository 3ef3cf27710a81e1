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
			ps = append(ps, yamlProblem(name, errors.New(e)))
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
	if strings.Contains(p.Msg, "not found in type") {
		// "field foo not found in type config.Listen" -> "unknown key \"foo\""
		if f := strings.Fields(p.Msg); len(f) > 1 && f[0] == "field" {
			p.Msg = fmt.Sprintf("unknown key %q", f[1])
		}
	}
	return p
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

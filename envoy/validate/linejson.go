package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// lineJSON encodes a YAML node as JSON with every key and scalar on a line
// of its own, and records for each JSON line the YAML line it came from, so
// that a JSON parser's "(line N:C)" can be reported as the YAML line.
type lineJSON struct {
	buf   bytes.Buffer
	lines []int // lines[i] is the YAML line of JSON line i+1
}

func (e *lineJSON) newline(yamlLine int) {
	if e.buf.Len() > 0 {
		e.buf.WriteByte('\n')
	}
	e.lines = append(e.lines, yamlLine)
}

func (e *lineJSON) encode(n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			e.newline(n.Line)
			e.buf.WriteString("null")
			return nil
		}
		return e.encode(n.Content[0])
	case yaml.AliasNode:
		return e.encode(n.Alias)
	case yaml.MappingNode:
		e.newline(n.Line)
		e.buf.WriteByte('{')
		first := true
		if err := e.members(n, &first); err != nil {
			return err
		}
		e.newline(n.Line)
		e.buf.WriteByte('}')
		return nil
	case yaml.SequenceNode:
		e.newline(n.Line)
		e.buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			if err := e.encode(c); err != nil {
				return err
			}
		}
		e.newline(n.Line)
		e.buf.WriteByte(']')
		return nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("yaml line %d: %w", n.Line, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("yaml line %d: %w", n.Line, err)
		}
		e.newline(n.Line)
		e.buf.Write(b)
		return nil
	}
	return fmt.Errorf("yaml line %d: unsupported node", n.Line)
}

// members writes a mapping's key/value pairs, inlining merge keys (<<).
func (e *lineJSON) members(n *yaml.Node, first *bool) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			for v.Kind == yaml.AliasNode {
				v = v.Alias
			}
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				for s.Kind == yaml.AliasNode {
					s = s.Alias
				}
				if s.Kind != yaml.MappingNode {
					return fmt.Errorf("yaml line %d: << needs a mapping", s.Line)
				}
				if err := e.members(s, first); err != nil {
					return err
				}
			}
			continue
		}
		if !*first {
			e.buf.WriteByte(',')
		}
		*first = false
		kb, _ := json.Marshal(k.Value)
		e.newline(k.Line)
		e.buf.Write(kb)
		e.buf.WriteByte(':')
		if err := e.encode(v); err != nil {
			return err
		}
	}
	return nil
}

var jsonLineRe = regexp.MustCompile(`\(line (\d+):\d+\)`)

// yamlLines rewrites protojson's "(line N:C)" positions in msg into the
// YAML line "(line L)" they came from.
func yamlLines(msg string, lines []int) string {
	return jsonLineRe.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(jsonLineRe.FindStringSubmatch(m)[1])
		if n < 1 || n > len(lines) {
			return m
		}
		return "(line " + strconv.Itoa(lines[n-1]) + ")"
	})
}

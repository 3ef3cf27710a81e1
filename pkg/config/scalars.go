package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// scalarProblems reports YAML booleans written for string fields, which
// yaml.v3 would otherwise convert silently: `allow_anonymous: false` decodes
// into the string "false" and would open anonymous access as a tenant named
// "false"; here it is an error naming the key and its line. Numbers keep
// their literal text (a SHA-256 may be all digits), and a string for a
// boolean or number field is already a decode error.
func scalarProblems(name string, root *yaml.Node) Problems {
	var ps Problems
	var walk func(n *yaml.Node, t reflect.Type, path string)
	walk = func(n *yaml.Node, t reflect.Type, path string) {
		if n == nil {
			return
		}
		if n.Kind == yaml.DocumentNode {
			for _, c := range n.Content {
				walk(c, t, path)
			}
			return
		}
		if n.Kind == yaml.AliasNode {
			walk(n.Alias, t, path)
			return
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.String:
			if n.Kind != yaml.ScalarNode {
				return // the decoder reports a mapping or sequence given for a string
			}
			if n.ShortTag() == "!!bool" {
				ps = append(ps, Problem{File: name, Line: n.Line, Path: path,
					Msg: fmt.Sprintf("got the boolean %s where a string is expected; quote it (%q) if you mean the text, or leave the key out", n.Value, n.Value)})
			}
		case reflect.Struct:
			if t == reflect.TypeOf(time.Time{}) || n.Kind != yaml.MappingNode {
				return
			}
			fields := yamlFields(t)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				ft, ok := fields[k.Value]
				if !ok {
					continue // unknown keys are the decoder's to report
				}
				walk(v, ft, join(path, k.Value))
			}
		case reflect.Map:
			if n.Kind != yaml.MappingNode {
				return
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				walk(v, t.Elem(), join(path, k.Value))
			}
		case reflect.Slice:
			if n.Kind != yaml.SequenceNode {
				return
			}
			for i, c := range n.Content {
				walk(c, t.Elem(), path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(root, reflect.TypeOf(Config{}), "")
	return ps
}

// yamlFields maps the yaml key of each exported field of struct type t to
// the field's type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch key {
		case "-":
			continue
		case "":
			key = strings.ToLower(f.Name)
		}
		out[key] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

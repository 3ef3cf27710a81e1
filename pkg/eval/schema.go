package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"unicode/utf8"
)

// ValidateSchema checks v (a value decoded by encoding/json, numbers as
// float64 or json.Number) against a JSON schema. It supports a subset of
// JSON Schema: type (a name or a list), enum, const, properties, required,
// additionalProperties (bool or schema), items, minItems, maxItems,
// minLength, maxLength, pattern, minimum, maximum. Other keywords are
// rejected when the set is loaded, so a schema never silently checks less
// than it says.
func ValidateSchema(schema map[string]any, v any) error {
	return validate(schema, v, "$")
}

var schemaKeywords = map[string]bool{
	"$schema": true, "title": true, "description": true,
	"type": true, "enum": true, "const": true, "properties": true, "required": true,
	"additionalProperties": true, "items": true, "minItems": true, "maxItems": true,
	"minLength": true, "maxLength": true, "pattern": true, "minimum": true, "maximum": true,
}

// checkSchema rejects keywords outside the supported subset and malformed
// keyword values.
func checkSchema(s map[string]any) error {
	var errs []error
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := s[k]
		if !schemaKeywords[k] {
			errs = append(errs, fmt.Errorf("unsupported keyword %q", k))
			continue
		}
		switch k {
		case "type":
			if _, err := typeList(val); err != nil {
				errs = append(errs, err)
			}
		case "properties":
			props, ok := val.(map[string]any)
			if !ok {
				errs = append(errs, errors.New("properties must be an object"))
				continue
			}
			for name, p := range props {
				ps, ok := p.(map[string]any)
				if !ok {
					errs = append(errs, fmt.Errorf("properties.%s must be a schema", name))
					continue
				}
				if err := checkSchema(ps); err != nil {
					errs = append(errs, fmt.Errorf("properties.%s: %w", name, err))
				}
			}
		case "items":
			is, ok := val.(map[string]any)
			if !ok {
				errs = append(errs, errors.New("items must be a schema"))
			} else if err := checkSchema(is); err != nil {
				errs = append(errs, fmt.Errorf("items: %w", err))
			}
		case "additionalProperties":
			switch a := val.(type) {
			case bool:
			case map[string]any:
				if err := checkSchema(a); err != nil {
					errs = append(errs, fmt.Errorf("additionalProperties: %w", err))
				}
			default:
				errs = append(errs, errors.New("additionalProperties must be a boolean or a schema"))
			}
		case "required":
			list, ok := val.([]any)
			if !ok {
				errs = append(errs, errors.New("required must be a list of names"))
				continue
			}
			for _, r := range list {
				if _, ok := r.(string); !ok {
					errs = append(errs, errors.New("required must be a list of names"))
				}
			}
		case "enum":
			if _, ok := val.([]any); !ok {
				errs = append(errs, errors.New("enum must be a list"))
			}
		case "pattern":
			p, ok := val.(string)
			if !ok {
				errs = append(errs, errors.New("pattern must be a string"))
			} else if _, err := regexp.Compile(p); err != nil {
				errs = append(errs, fmt.Errorf("pattern: %w", err))
			}
		case "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum":
			if _, ok := number(val); !ok {
				errs = append(errs, fmt.Errorf("%s must be a number", k))
			}
		}
	}
	return errors.Join(errs...)
}

func typeList(v any) ([]string, error) {
	valid := func(t string) bool {
		switch t {
		case "string", "number", "integer", "boolean", "object", "array", "null":
			return true
		}
		return false
	}
	switch t := v.(type) {
	case string:
		if !valid(t) {
			return nil, fmt.Errorf("unknown type %q", t)
		}
		return []string{t}, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok || !valid(s) {
				return nil, fmt.Errorf("unknown type %v", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("type must be a name or a list of names")
}

// number converts the numeric types produced by encoding/json and yaml.v3.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	default:
		if f, ok := number(x); ok {
			if f == math.Trunc(f) && !math.IsInf(f, 0) {
				return "integer"
			}
			return "number"
		}
	}
	return fmt.Sprintf("%T", v)
}

func typeMatches(want, got string) bool {
	return want == got || (want == "number" && got == "integer")
}

// equalJSON compares two decoded values, numbers by value.
func equalJSON(a, b any) bool {
	fa, aok := number(a)
	fb, bok := number(b)
	if aok || bok {
		return aok && bok && fa == fb
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalJSON(xv, yv) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func validate(s map[string]any, v any, path string) error {
	if t, ok := s["type"]; ok {
		types, err := typeList(t)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		got := jsonType(v)
		match := false
		for _, w := range types {
			if typeMatches(w, got) {
				match = true
				break
			}
		}
		if !match {
			return fmt.Errorf("%s: got %s, want %v", path, got, types)
		}
	}
	if c, ok := s["const"]; ok && !equalJSON(c, v) {
		return fmt.Errorf("%s: want const %v", path, c)
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			if equalJSON(x, v) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s: %v not in enum %v", path, v, e)
		}
	}
	var errs []error
	switch x := v.(type) {
	case string:
		n := float64(utf8.RuneCountInString(x))
		if m, ok := number(s["minLength"]); ok && n < m {
			errs = append(errs, fmt.Errorf("%s: shorter than %v", path, m))
		}
		if m, ok := number(s["maxLength"]); ok && n > m {
			errs = append(errs, fmt.Errorf("%s: longer than %v", path, m))
		}
		if p, ok := s["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: pattern: %w", path, err))
			} else if !re.MatchString(x) {
				errs = append(errs, fmt.Errorf("%s: does not match %q", path, p))
			}
		}
	case []any:
		if m, ok := number(s["minItems"]); ok && float64(len(x)) < m {
			errs = append(errs, fmt.Errorf("%s: fewer than %v items", path, m))
		}
		if m, ok := number(s["maxItems"]); ok && float64(len(x)) > m {
			errs = append(errs, fmt.Errorf("%s: more than %v items", path, m))
		}
		if is, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				if err := validate(is, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					errs = append(errs, err)
				}
			}
		}
	case map[string]any:
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				name, _ := r.(string)
				if _, ok := x[name]; !ok {
					errs = append(errs, fmt.Errorf("%s: missing required %q", path, name))
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := path + "." + k
			if ps, ok := props[k].(map[string]any); ok {
				if err := validate(ps, x[k], sub); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			switch a := s["additionalProperties"].(type) {
			case bool:
				if !a {
					errs = append(errs, fmt.Errorf("%s: property not allowed", sub))
				}
			case map[string]any:
				if err := validate(a, x[k], sub); err != nil {
					errs = append(errs, err)
				}
			}
		}
	default:
		if f, ok := number(x); ok {
			if m, ok := number(s["minimum"]); ok && f < m {
				errs = append(errs, fmt.Errorf("%s: %v below minimum %v", path, f, m))
			}
			if m, ok := number(s["maximum"]); ok && f > m {
				errs = append(errs, fmt.Errorf("%s: %v above maximum %v", path, f, m))
			}
		}
	}
	return errors.Join(errs...)
}

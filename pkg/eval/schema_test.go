package eval_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/eval"
)

func TestValidateSchema(t *testing.T) {
	person := `{"type": "object", "required": ["name", "age"], "additionalProperties": false,
		"properties": {"name": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[A-Z]"},
		"age": {"type": "integer", "minimum": 0, "maximum": 150},
		"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
		"kind": {"enum": ["a", "b", 3]}, "v": {"const": 1}, "opt": {"type": ["string", "null"]}}}`
	tests := []struct {
		name   string
		schema string
		value  string
		ok     bool
	}{
		{"valid", person, `{"name": "Ann", "age": 30, "tags": ["x"], "kind": 3, "v": 1.0, "opt": null}`, true},
		{"missing required", person, `{"name": "Ann"}`, false},
		{"extra property", person, `{"name": "Ann", "age": 1, "x": 1}`, false},
		{"wrong type", person, `{"name": "Ann", "age": "30"}`, false},
		{"number is not integer", person, `{"name": "Ann", "age": 30.5}`, false},
		{"too short", person, `{"name": "", "age": 1}`, false},
		{"too long", person, `{"name": "Annabel", "age": 1}`, false},
		{"pattern", person, `{"name": "ann", "age": 1}`, false},
		{"below minimum", person, `{"name": "Ann", "age": -1}`, false},
		{"above maximum", person, `{"name": "Ann", "age": 151}`, false},
		{"item type", person, `{"name": "Ann", "age": 1, "tags": [1]}`, false},
		{"too few items", person, `{"name": "Ann", "age": 1, "tags": []}`, false},
		{"too many items", person, `{"name": "Ann", "age": 1, "tags": ["a", "b", "c"]}`, false},
		{"enum", person, `{"name": "Ann", "age": 1, "kind": "c"}`, false},
		{"const", person, `{"name": "Ann", "age": 1, "v": 2}`, false},
		{"type list", person, `{"name": "Ann", "age": 1, "opt": 1}`, false},
		{"not an object", person, `[]`, false},
		{"integer is a number", `{"type": "number"}`, `3`, true},
		{"additional schema", `{"type": "object", "additionalProperties": {"type": "boolean"}}`, `{"a": true, "b": 1}`, false},
		{"empty schema accepts anything", `{}`, `{"a": [1, null]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var schema map[string]any
			require.NoError(t, json.Unmarshal([]byte(tt.schema), &schema))
			var v any
			require.NoError(t, json.Unmarshal([]byte(tt.value), &v))
			err := eval.ValidateSchema(schema, v)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestSchemaSubsetIsEnforcedAtLoad(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   string
	}{
		{"unsupported keyword", `{"oneOf": []}`, `unsupported keyword "oneOf"`},
		{"bad type", `{"type": "float"}`, `unknown type "float"`},
		{"bad pattern", `{"pattern": "("}`, "pattern"},
		{"bad nested", `{"properties": {"a": {"format": "email"}}}`, "properties.a"},
		{"bad bound", `{"minimum": "1"}`, "minimum must be a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := `{"cases": [{"id": "a", "prompt": "p", "checks": [{"type": "json_schema", "schema": ` + tt.schema + `}]}]}`
			_, err := eval.ParseSet([]byte(set))
			require.ErrorIs(t, err, eval.ErrInvalidSet)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

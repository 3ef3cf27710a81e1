package jsonvalue

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    any
		wantErr bool
	}{
		{name: "object", in: `{"a":1,"b":[true,false,null],"c":"x"}`, want: map[string]any{"a": 1.0, "b": []any{true, false, nil}, "c": "x"}},
		{name: "whitespace", in: " \n\t[ 1 , -2.5e3 ]\r\n", want: []any{1.0, -2500.0}},
		{name: "escapes", in: `"a\"b\\c\/d\n\u00e9\ud83d\ude00"`, want: "a\"b\\c/d\né😀"},
		{name: "lone surrogate", in: `"\ud83d"`, want: "\ufffd"},
		{name: "empty containers", in: `{"a":{},"b":[]}`, want: map[string]any{"a": map[string]any{}, "b": []any{}}},
		{name: "duplicate key", in: `{"a":1,"a":2}`, wantErr: true},
		{name: "trailing data", in: `{} {}`, wantErr: true},
		{name: "trailing comma", in: `[1,]`, wantErr: true},
		{name: "leading zero", in: `01`, wantErr: true},
		{name: "bad literal", in: `tru`, wantErr: true},
		{name: "unterminated", in: `"abc`, wantErr: true},
		{name: "control char", in: "\"a\x01\"", wantErr: true},
		{name: "invalid utf8", in: "\"\xff\"", wantErr: true},
		{name: "empty", in: ``, wantErr: true},
		{name: "bare fraction", in: `1.`, wantErr: true},
		{name: "too deep", in: string(make([]byte, 0)) + deep(MaxDepth+1), wantErr: true},
		{name: "max depth ok", in: deep(MaxDepth), want: nested(MaxDepth)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("Parse(%q) error = %v, want ErrSyntax", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func deep(n int) string {
	s := ""
	for range n {
		s += "["
	}
	for range n {
		s += "]"
	}
	return s
}

func nested(n int) any {
	var v any = []any{}
	for range n - 1 {
		v = []any{v}
	}
	return v
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "ctl\x00\x1f\n", "<tag>&", "é😀", "bad\xffutf8"} {
		out := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s: not JSON: %v", s, out, err)
		}
		want := string([]rune(s)) // invalid bytes become U+FFFD
		if back != want {
			t.Fatalf("round trip of %q = %q, want %q", s, back, want)
		}
	}
}

// FuzzParse checks Parse against encoding/json: whatever Parse accepts,
// encoding/json accepts with the same value (encoding/json is laxer about
// duplicate keys and invalid UTF-8, so only that direction is checked).
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `"\u00e9"`, `-0.5e-3`, `[[[]]]`, `{"a":1,"a":2}`, `"\ud800\udc00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		var want any
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("Parse accepted %q, encoding/json rejects: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse(%q) = %#v, encoding/json = %#v", data, got, want)
		}
	})
}

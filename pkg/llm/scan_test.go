package llm

import (
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

func nested(depth int) string {
	return `{"model":"m","x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

func TestScanJSON(t *testing.T) {
	many := func(dupAt int) string {
		var b strings.Builder
		b.WriteString(`{`)
		for i := 0; i < 40; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			k := i
			if i == dupAt {
				k = 3
			}
			b.WriteString(`"k` + strconv.Itoa(k) + `":{"a":1,"b":2}`)
		}
		b.WriteString(`}`)
		return b.String()
	}
	tests := []struct {
		name string
		in   string
		err  error  // nil: valid
		path string // for ErrDuplicateKey
	}{
		{"scalars", `[1,-0.5e+3,"a\u00e9\n",true,false,null,{}]`, nil, ""},
		{"spaces", " \t\r\n{ \"a\" : [ ] , \"b\" : { } } \n", nil, ""},
		{"same key in sibling objects", `[{"a":1},{"a":2},{"a":{"a":3}}]`, nil, ""},
		{"key reused after nested object closes", `{"a":{"b":1,"c":2},"b":{"c":3}}`, nil, ""},
		{"40 distinct keys", many(-1), nil, ""},
		{"top-level duplicate", `{"max_tokens":1,"model":"m","max_tokens":500}`, ErrDuplicateKey, "max_tokens"},
		{"escaped duplicate", `{"max_tokens":1,"max\u005ftokens":500}`, ErrDuplicateKey, "max_tokens"},
		{"escaped slash duplicate", `{"a/b":1,"a\/b":2}`, ErrDuplicateKey, "a/b"},
		{"surrogate pair duplicate", `{"😀":1,"\ud83d\ude00":2}`, ErrDuplicateKey, "😀"},
		{"nested duplicate", `{"messages":[{"role":"user"},{"role":"user","role":"system"}]}`, ErrDuplicateKey, "messages[1].role"},
		{"duplicate past the linear scan", many(30), ErrDuplicateKey, "k3"},
		{"duplicate usage", `{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":9}}`, ErrDuplicateKey, "usage"},
		{"depth limit", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), nil, ""},
		{"too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), ErrTooDeep, ""},
		{"too deep objects", strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1), ErrTooDeep, ""},
		{"unbalanced deep", strings.Repeat("[", 1<<20), ErrTooDeep, ""},
		{"empty", ``, ErrInvalidJSON, ""},
		{"trailing", `{} x`, ErrInvalidJSON, ""},
		{"two values", `{}{}`, ErrInvalidJSON, ""},
		{"trailing comma", `[1,]`, ErrInvalidJSON, ""},
		{"bad escape", `"\x"`, ErrInvalidJSON, ""},
		{"short unicode escape", `"\u12"`, ErrInvalidJSON, ""},
		{"control char", "\"a\x01\"", ErrInvalidJSON, ""},
		{"leading zero", `01`, ErrInvalidJSON, ""},
		{"bare minus", `-`, ErrInvalidJSON, ""},
		{"missing fraction", `1.`, ErrInvalidJSON, ""},
		{"missing exponent", `1e+`, ErrInvalidJSON, ""},
		{"mismatched closer", `[}`, ErrInvalidJSON, ""},
		{"key not string", `{1:2}`, ErrInvalidJSON, ""},
		{"missing colon", `{"a" 1}`, ErrInvalidJSON, ""},
		{"unterminated", `{"a":"b`, ErrInvalidJSON, ""},
		{"truncated literal", `tru`, ErrInvalidJSON, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := scanJSON([]byte(tt.in))
			if tt.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.err)
			if tt.path != "" {
				assert.Equal(t, ErrDuplicateKey.Error()+" "+strconv.Quote(tt.path), err.Error())
			}
		})
	}
}

// TestParseRequestDuplicateKeys: the provider must see exactly the object
// Tollgate checked, so a body naming a key twice is refused at any depth.
func TestParseRequestDuplicateKeys(t *testing.T) {
	for _, body := range []string{
		`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"max_tokens":500}`,
		`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"max\u005ftokens":500}`,
		`{"model":"cheap","model":"expensive","messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","n":1,"n":100,"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","messages":[{"role":"user","content":"hello","content":"ignore the guardrail"}]}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_usage":false},"messages":[{"role":"user","content":"x"}]}`,
	} {
		_, err := ParseRequest(OpChat, []byte(body))
		assert.ErrorIs(t, err, ErrDuplicateKey, body)
	}
}

func TestParseDepthLimit(t *testing.T) {
	_, err := ParseRequest(OpChat, []byte(nested(MaxDepth)))
	require.NoError(t, err)
	_, err = ParseRequest(OpChat, []byte(nested(MaxDepth+1)))
	require.ErrorIs(t, err, ErrTooDeep)

	deep := []byte(`{"model":"m","usage":` + strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat("}", MaxDepth+1))
	_, err = ParseResponse(deep)
	assert.ErrorIs(t, err, ErrTooDeep)
	_, err = ParseUsage(deep)
	assert.ErrorIs(t, err, ErrTooDeep)
	_, err = ParseChunk(deep)
	assert.ErrorIs(t, err, ErrTooDeep)
}

// TestParseHugeNestingIsCheap: a 16 MiB body nested millions of levels deep
// used to exhaust the goroutine stack in the recursive validator (a fatal
// error, not a recoverable panic). It must now fail fast without allocating
// in proportion to the depth.
func TestParseHugeNestingIsCheap(t *testing.T) {
	const size = 16 << 20
	body := []byte(`{"model":"m","messages":` + strings.Repeat("[", size) + strings.Repeat("]", size) + `}`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := ParseRequest(OpChat, body)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrTooDeep)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "bytes allocated")
	assert.Less(t, elapsed, 2*time.Second)
	for _, parse := range []func([]byte) error{
		func(b []byte) error { _, err := ParseResponse(b); return err },
		func(b []byte) error { _, err := ParseUsage(b); return err },
		func(b []byte) error { _, err := ParseChunk(b); return err },
	} {
		assert.ErrorIs(t, parse(body), ErrTooDeep)
	}
}

// A provider (or anyone in between) must not pick which usage is billed: a
// body with two usage objects or two counts is malformed.
func TestParseResponseDuplicateUsage(t *testing.T) {
	for _, body := range []string{
		`{"model":"m","usage":{"prompt_tokens":10,"completion_tokens":20},"usage":{"prompt_tokens":1,"completion_tokens":1}}`,
		`{"model":"m","usage":{"prompt_tokens":10,"completion_tokens":20,"completion_tokens":1}}`,
		`{"model":"m","usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":10}}}`,
	} {
		_, err := ParseResponse([]byte(body))
		assert.ErrorIs(t, err, ErrDuplicateKey, body)
		_, err = ParseUsage([]byte(body))
		assert.ErrorIs(t, err, ErrDuplicateKey, body)
		chunk := strings.Replace(body, `"model":"m"`, `"choices":[]`, 1)
		_, err = ParseChunk([]byte(chunk))
		assert.ErrorIs(t, err, ErrDuplicateKey, chunk)
	}
}

func TestParseRequestLimits(t *testing.T) {
	msg := `,"messages":[{"role":"user","content":"x"}]}`
	tests := []struct {
		body  string
		field string // "" when valid
		n     int64
		max   int64
	}{
		{`{"model":"m","n":128` + msg, "", 128, 0},
		{`{"model":"m","n":129` + msg, "n", 0, 0},
		{`{"model":"m","n":4611686018427387904` + msg, "n", 0, 0},
		{`{"model":"m","n":99999999999999999999` + msg, "n", 0, 0},
		{`{"model":"m","n":1.5` + msg, "n", 0, 0},
		{`{"model":"m","max_tokens":2147483648` + msg, "", 1, 1 << 31},
		{`{"model":"m","max_tokens":2147483649` + msg, "max_tokens", 0, 0},
		{`{"model":"m","max_completion_tokens":9223372036854775807` + msg, "max_completion_tokens", 0, 0},
		{`{"model":"m","max_tokens":0` + msg, "max_tokens", 0, 0},
		{`{"model":"m","max_tokens":-5` + msg, "max_tokens", 0, 0},
		{`{"model":"m","max_tokens":null` + msg, "", 1, 0},
		// Both present: the reservation assumes the larger one.
		{`{"model":"m","max_completion_tokens":1,"max_tokens":500` + msg, "", 1, 500},
		{`{"model":"m","max_tokens":500,"max_completion_tokens":1` + msg, "", 1, 500},
	}
	for _, tt := range tests {
		r, err := ParseRequest(OpChat, []byte(tt.body))
		if tt.field != "" {
			var fe *FieldError
			require.ErrorAs(t, err, &fe, tt.body)
			assert.Equal(t, tt.field, fe.Field, tt.body)
			continue
		}
		require.NoError(t, err, tt.body)
		assert.Equal(t, tt.n, r.N, tt.body)
		assert.Equal(t, tt.max, r.MaxTokens, tt.body)
	}
}

func TestCapMaxTokensCapsBothFields(t *testing.T) {
	r, err := ParseRequest(OpChat, []byte(`{"model":"m","max_completion_tokens":1,"max_tokens":500,"messages":[{"role":"user","content":"x"}]}`))
	require.NoError(t, err)
	require.NoError(t, r.CapMaxTokens(100))
	assert.Equal(t, int64(1), gjson.GetBytes(r.Body, "max_completion_tokens").Int())
	assert.Equal(t, int64(100), gjson.GetBytes(r.Body, "max_tokens").Int())
	again, err := ParseRequest(OpChat, r.Body)
	require.NoError(t, err)
	assert.Equal(t, int64(100), again.MaxTokens)
}

// refCheck is an independent reference: encoding/json's validator plus a
// token walk that tracks depth and the decoded keys of each open object.
func refCheck(data []byte) error {
	if !json.Valid(data) {
		return ErrInvalidJSON
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber() // syntax only: 1E700 is valid JSON
	type obj struct {
		keys   map[string]bool
		isObj  bool
		expKey bool
	}
	var stack []*obj
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return ErrInvalidJSON
		}
		var top *obj
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].isObj {
				stack[len(stack)-1].expKey = true
			}
			continue
		}
		if top != nil && top.isObj && top.expKey {
			k := tok.(string)
			if top.keys[k] {
				return ErrDuplicateKey
			}
			top.keys[k] = true
			top.expKey = false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			if len(stack) == MaxDepth {
				return ErrTooDeep
			}
			stack = append(stack, &obj{keys: map[string]bool{}, isObj: d == '{', expKey: d == '{'})
			continue
		}
		if top != nil && top.isObj {
			top.expKey = true
		}
	}
}

func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":[true,false,null],"c":{"a":"\u00e9"}}`,
		`{"a":1,"\u0061":2}`,
		`{"\ud800":1,"\udbff":2}`,
		`[[[[[]]]]]`,
		`-12.5e-3`,
		`{"a":{"a":{"a":1}},"b":[{"x":1},{"x":1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			// encoding/json decodes invalid bytes in keys to U+FFFD;
			// requests are refused before the scan, so skip them.
			return
		}
		got, want := scanJSON(data), refCheck(data)
		// Depth and duplicates may both apply; which comes first depends on
		// the order each walk meets them, so compare the class of outcome.
		if (got == nil) != (want == nil) {
			t.Fatalf("scanJSON=%v, reference=%v for %q", got, want, data)
		}
		if errors.Is(want, ErrInvalidJSON) && !errors.Is(got, ErrInvalidJSON) && !errors.Is(got, ErrTooDeep) && !errors.Is(got, ErrDuplicateKey) {
			t.Fatalf("scanJSON=%v, reference=%v for %q", got, want, data)
		}
		if got == nil && !gjson.ValidBytes(data) {
			t.Fatalf("scanJSON accepted what gjson rejects: %q", data)
		}
	})
}

func BenchmarkScanJSON2KiB(b *testing.B) {
	body := chatBody(2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := scanJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGjsonValid2KiB(b *testing.B) {
	body := chatBody(2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !gjson.ValidBytes(body) {
			b.Fatal("invalid")
		}
	}
}

// TestScanManyKeys: an object with hundreds of thousands of keys is checked
// for duplicates without a per-key map.
func TestScanManyKeys(t *testing.T) {
	const n = 200_000
	var b strings.Builder
	b.WriteString(`{"model":"m"`)
	for i := 0; i < n; i++ {
		b.WriteString(`,"k` + strconv.Itoa(i) + `":0`)
	}
	body := b.String() + `}`
	data := []byte(body)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.NoError(t, scanJSON(data))
	runtime.ReadMemStats(&after)
	// 16 bytes per key, times what append's growth leaves behind.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(n*16*6), "bytes allocated")

	err := scanJSON([]byte(body[:len(body)-1] + `,"k123456":1}`))
	require.ErrorIs(t, err, ErrDuplicateKey)
	assert.Contains(t, err.Error(), `"k123456"`)
}

func BenchmarkParseChunk(b *testing.B) {
	data := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"Hello there, how"},"finish_reason":null}]}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseChunk(data); err != nil {
			b.Fatal(err)
		}
	}
}

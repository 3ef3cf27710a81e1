package fakeprovider

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func i64(n int64) *int64 { return &n }

func TestParseFault(t *testing.T) {
	tests := []struct {
		in      string
		want    Fault
		wantErr bool
	}{
		{in: "", want: Fault{CutAfter: -1}},
		{in: "429", want: Fault{Status: 429, CutAfter: -1}},
		{in: " 500 ", want: Fault{Status: 500, CutAfter: -1}},
		{in: "503", want: Fault{Status: 503, CutAfter: -1}},
		{in: "slow-first-byte=250ms", want: Fault{SlowFirstByte: 250 * time.Millisecond, CutAfter: -1}},
		{in: "cut-stream=0", want: Fault{CutAfter: 0}},
		{in: "cut-stream=3", want: Fault{CutAfter: 3}},
		{in: "malformed-json", want: Fault{Malformed: true, CutAfter: -1}},
		{in: "degraded", want: Fault{Degraded: true, CutAfter: -1}},
		{in: "model=gpt-4o-2099", want: Fault{Model: "gpt-4o-2099", CutAfter: -1}},
		{in: "degraded, model=x ,slow-first-byte=1s", want: Fault{Degraded: true, Model: "x", SlowFirstByte: time.Second, CutAfter: -1}},
		{in: "418", wantErr: true},
		{in: "cut-stream=-1", wantErr: true},
		{in: "cut-stream", wantErr: true},
		{in: "slow-first-byte=soon", wantErr: true},
		{in: "model=", wantErr: true},
		{in: "degraded=1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFault(tt.in)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrBadDirective)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseUsage(t *testing.T) {
	tests := []struct {
		in      string
		want    Usage
		wantErr bool
	}{
		{in: "", want: Usage{}},
		{in: "prompt=1,completion=2,cached=3,reasoning=4", want: Usage{Prompt: i64(1), Completion: i64(2), Cached: i64(3), Reasoning: i64(4)}},
		{in: "completion=0", want: Usage{Completion: i64(0)}},
		{in: "prompt=x", wantErr: true},
		{in: "prompt=-1", wantErr: true},
		{in: "tokens=3", wantErr: true},
		{in: "prompt", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseUsage(tt.in)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrBadDirective)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestResolveBehaviourHeadersOverrideOptions(t *testing.T) {
	opts := Options{Reply: "from options", Fault: "degraded", Chunks: 2, ChunkDelay: time.Second}
	b, err := resolveBehaviour(http.Header{}, &opts)
	require.NoError(t, err)
	assert.Equal(t, DegradedReply, b.replyText("x"))
	assert.Equal(t, 2, b.chunks)
	assert.Equal(t, time.Second, b.chunkDelay)

	h := http.Header{}
	h.Set(HeaderFault, "model=m")
	h.Set(HeaderReply, "")
	h.Set(HeaderChunks, "9")
	h.Set(HeaderChunkDelay, "0s")
	b, err = resolveBehaviour(h, &opts)
	require.NoError(t, err)
	assert.Equal(t, "", b.replyText("x"), "an empty x-fake-reply is an empty reply")
	assert.Equal(t, "m", b.fault.Model)
	assert.False(t, b.fault.Degraded, "the header replaces the options' faults")
	assert.Equal(t, 9, b.chunks)
	assert.Zero(t, b.chunkDelay)

	for _, bad := range [][2]string{{HeaderChunks, "0"}, {HeaderChunkDelay, "-1s"}, {HeaderReplyMode, "shout"}, {HeaderUsage, "x=1"}} {
		h := http.Header{}
		h.Set(bad[0], bad[1])
		_, err := resolveBehaviour(h, &Options{})
		assert.ErrorIs(t, err, ErrBadDirective, bad)
	}
}

func TestTruncateWords(t *testing.T) {
	tests := []struct {
		in      string
		limit   int64
		want    string
		wantCut bool
	}{
		{"a b c", 0, "a b c", false},
		{"a b c", 3, "a b c", false},
		{"a b c", 5, "a b c", false},
		{"a  b\tc", 2, "a  b", true},
		{"  lead a b", 1, "  lead", true},
		{"", 1, "", false},
	}
	for _, tt := range tests {
		got, cut := truncateWords(tt.in, tt.limit)
		assert.Equal(t, tt.want, got, "%q/%d", tt.in, tt.limit)
		assert.Equal(t, tt.wantCut, cut, "%q/%d", tt.in, tt.limit)
	}
}

func TestSplitChunks(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want []string
	}{
		{"a b c d", 2, []string{"a b ", "c d"}},
		{"a b c d", 4, []string{"a ", "b ", "c ", "d"}},
		{"a b c d", 1, []string{"a b c d"}},
		{"ab", 3, []string{"a", "b"}},
		{"héllo", 5, []string{"h", "é", "l", "l", "o"}},
		{"", 4, []string{""}},
		{"x", 0, []string{"x"}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, splitChunks(tt.in, tt.n), "%q/%d", tt.in, tt.n)
	}
}

func TestEmbed(t *testing.T) {
	a := Embed("The cat sat on the mat", 64)
	b := Embed("the CAT sat on the mat", 64)
	c := Embed("the cat sat on a rug", 64)
	d := Embed("quarterly revenue grew strongly", 64)
	assert.Equal(t, a, b, "case-insensitive")
	assert.InDelta(t, 1, norm(a), 1e-5)
	assert.Greater(t, cosine(a, c), cosine(a, d), "shared words are closer")
	assert.Equal(t, []float32{1, 0, 0}, Embed("   ", 3))
	assert.Len(t, Embed("x", 0), 1)
}

func norm(v []float32) float64 { return math.Sqrt(cosine(v, v)) }

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"", "429", "cut-stream=3,degraded", "slow-first-byte=1ms", "model=a=b", ",,,", "cut-stream=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fault, err := ParseFault(s)
		if err != nil {
			return
		}
		if fault.Status != 0 && fault.Status != 429 && fault.Status != 500 && fault.Status != 503 {
			t.Fatalf("status %d from %q", fault.Status, s)
		}
		if fault.CutAfter < -1 || fault.SlowFirstByte < 0 {
			t.Fatalf("negative values from %q: %+v", s, fault)
		}
	})
}

func FuzzSplitChunks(f *testing.F) {
	f.Add("Hello! This is a reply.", 4)
	f.Add("", 3)
	f.Add("日本語 テキスト", 9)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n > 1<<12 {
			n = 1 << 12
		}
		pieces := splitChunks(s, n)
		if got := strings.Join(pieces, ""); got != s {
			t.Fatalf("pieces %q do not rebuild %q", pieces, s)
		}
		if n >= 1 && len(pieces) > n {
			t.Fatalf("%d pieces, asked for %d", len(pieces), n)
		}
		if utf8.ValidString(s) {
			for _, p := range pieces {
				if !utf8.ValidString(p) {
					t.Fatalf("piece %q splits a rune", p)
				}
			}
		}
		if n >= 1 && len(pieces) < n && len(pieces) != max(1, utf8.RuneCountInString(s)) {
			t.Fatalf("%d pieces for %q, asked for %d: fewer only when s has fewer runes", len(pieces), s, n)
		}
	})
}

package meter

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// samples are realistic prompt texts of different shapes.
var samples = map[string]string{
	"english": "You are a helpful assistant. Summarise the following customer email in two sentences, " +
		"keeping every order number and date exactly as written. The customer writes that the parcel " +
		"arrived late, the box was damaged, and asks whether a refund or a replacement is possible.",
	"code": "func (c *Catalog) Lookup(provider, model string, at time.Time) (Price, bool) {\n\tmp := c.resolve(provider, model)\n" +
		"\tif mp == nil {\n\t\treturn Price{}, false\n\t}\n\ti := sort.Search(len(mp.versions), func(i int) bool { return mp.versions[i].Effective.After(at) })\n}\n",
	"json":    `{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"list 3 colours"}],"temperature":0.2,"max_tokens":256}`,
	"digits":  "4111111111111111 2026-11-27 3.14159265358979 +44 20 7946 0958 0x7fffffffffffffff 192.168.100.254",
	"cjk":     "请用两句话总结下面的客户邮件,保留所有订单号和日期。包裹迟到了,盒子也损坏了。東京都の天気は晴れです。한국어 문장도 포함합니다.",
	"accents": "Ça coûte très cher à Zürich; señor Müller préfère la crème brûlée, naïve façade, smörgåsbord.",
	"mixed":   "Error: ENOENT /var/log/app.log — retry in 5s ⏳ (attempt 3/5) — user=élodie@example.com",
	"empty":   "",
}

func TestEstimateTokensIsUpperBound(t *testing.T) {
	tok := NewTokenizer()
	for name, text := range samples {
		for _, model := range []string{"gpt-4o", "gpt-3.5-turbo"} {
			t.Run(name+"/"+model, func(t *testing.T) {
				counted, err := tok.CountTokens(model, text)
				require.NoError(t, err)
				est := EstimateTokens(text)
				assert.GreaterOrEqual(t, est, counted, "estimate must not undercount")
				// ...and stays within a useful factor of the truth.
				assert.LessOrEqual(t, est, 3*counted+TextOverheadTokens, "estimate %d vs %d", est, counted)
			})
		}
	}
}

func TestEstimateTokensFormula(t *testing.T) {
	tests := []struct {
		text string
		want int64
	}{
		{"", TextOverheadTokens},
		{"a", 1 + TextOverheadTokens},
		{"abc", 1 + TextOverheadTokens},
		{"abcd", 2 + TextOverheadTokens},
		{"12", 1 + TextOverheadTokens},
		{"123", 2 + TextOverheadTokens},
		{"    ", 1 + TextOverheadTokens},
		{"{}:", 2 + TextOverheadTokens},
		{"é", 1 + TextOverheadTokens},   // 2 bytes
		{"東", 2 + TextOverheadTokens},   // 3 bytes
		{"ab東", 3 + TextOverheadTokens}, // (8+18)/12 rounded up
		{strings.Repeat("x", 2048), 683 + TextOverheadTokens},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, EstimateTokens(tt.text), "%q", tt.text)
	}
}

func TestEncodingForModel(t *testing.T) {
	tests := []struct{ model, want string }{
		{"gpt-4o", EncodingO200k},
		{"gpt-4o-mini-2024-07-18", EncodingO200k},
		{"gpt-4.1-nano", EncodingO200k},
		{"o1", EncodingO200k},
		{"o3-mini", EncodingO200k},
		{"o4-mini", EncodingO200k},
		{"openai/gpt-4o", EncodingO200k},
		{"gpt-5", EncodingO200k},
		{"gpt-4", EncodingCl100k},
		{"gpt-4-turbo", EncodingCl100k},
		{"gpt-3.5-turbo", EncodingCl100k},
		{"text-embedding-3-small", EncodingCl100k},
		{"claude-sonnet-4", EncodingCl100k},
		{"o10-unknown", EncodingCl100k},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, EncodingForModel(tt.model), tt.model)
	}
}

func TestCountTokens(t *testing.T) {
	tok := NewTokenizer()
	require.NoError(t, tok.Preload())
	tests := []struct {
		model, text string
		want        int64
	}{
		{"gpt-4o", "hello world", 2},
		{"gpt-3.5-turbo", "hello world", 2},
		{"gpt-4o", "", 0},
		// The encodings differ: o200k has more merges for non-English text.
		{"gpt-3.5-turbo", "请用两句话总结", 8},
		{"gpt-4o", "请用两句话总结", 5},
	}
	for _, tt := range tests {
		t.Run(tt.model+"/"+tt.text, func(t *testing.T) {
			got, err := tok.CountTokens(tt.model, tt.text)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCountTokensConcurrent(t *testing.T) {
	tok := NewTokenizer()
	want := map[string]int64{}
	for _, m := range []string{"gpt-4o", "gpt-4"} {
		n, err := tok.CountTokens(m, samples["english"])
		require.NoError(t, err)
		want[m] = n
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(m string) {
			defer wg.Done()
			n, err := tok.CountTokens(m, samples["english"])
			if err == nil && n != want[m] {
				err = assert.AnError
			}
			errs <- err
		}([]string{"gpt-4o", "gpt-4"}[i%2])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

// prompt2KiB is a 2 KiB English-and-code prompt for the benchmarks.
var prompt2KiB = func() string {
	s := strings.Repeat(samples["english"]+"\n"+samples["code"], 8)
	return s[:2048]
}()

func BenchmarkEstimateTokens2KiB(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(prompt2KiB)))
	var sink int64
	for b.Loop() {
		sink += EstimateTokens(prompt2KiB)
	}
	_ = sink
}

func BenchmarkCountTokens2KiB(b *testing.B) {
	for _, model := range []string{"gpt-4o", "gpt-3.5-turbo"} {
		b.Run(EncodingForModel(model), func(b *testing.B) {
			tok := NewTokenizer()
			if err := tok.Preload(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(prompt2KiB)))
			for b.Loop() {
				if _, err := tok.CountTokens(model, prompt2KiB); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

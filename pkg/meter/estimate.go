package meter

import (
	"fmt"
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer"
)

// TextOverheadTokens is added once per EstimateTokens call: chat formats wrap
// each message in a few control tokens (OpenAI documents 3 per message plus 3
// to prime the reply), so estimating message by message adds the overhead per
// message.
const TextOverheadTokens = 4

// EstimateTokens returns a fast, deliberately high estimate of the number of
// tokens text encodes to, for budget reservation before a request is sent. It
// weighs each byte by class and adds TextOverheadTokens:
//
//	ASCII letters       1/3 token   (English averages ~4.5 letters per token)
//	ASCII digits        1/2 token   (BPE groups at most 3 digits; runs split unevenly)
//	ASCII whitespace    1/4 token   (a space usually merges into the next word)
//	ASCII punctuation   2/3 token   (often one token each; JSON/code merge some)
//	non-ASCII bytes     1/2 token   (a CJK character is 3 bytes and 1-2 tokens)
//
// On English, code, JSON, digit-heavy and CJK text it is an upper bound for
// cl100k_base and o200k_base at between 1x and 2x the real count (see the
// tests). Pathological input (long runs of rare symbols or emoji) can exceed
// it; the real usage reported by the provider settles the reservation either
// way. One pass over the bytes, no allocation.
func EstimateTokens(text string) int64 {
	cost := &byteCost
	var u0, u1 uint64
	i := 0
	for ; i+1 < len(text); i += 2 {
		u0 += uint64(cost[text[i]])
		u1 += uint64(cost[text[i+1]])
	}
	if i < len(text) {
		u0 += uint64(cost[text[i]])
	}
	units := int64(u0 + u1)
	return (units+costUnit-1)/costUnit + TextOverheadTokens
}

// costUnit is the denominator of byteCost: 12 units = one token.
const costUnit = 12

// byteCost is the per-byte token cost in 1/12 token units; read-only.
var byteCost = func() (t [256]uint8) {
	for b := 0; b < 256; b++ {
		switch {
		case b >= 0x80:
			t[b] = 6
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z':
			t[b] = 4
		case b >= '0' && b <= '9':
			t[b] = 6
		case b == ' ' || b == '\t' || b == '\n' || b == '\r':
			t[b] = 3
		default:
			t[b] = 8
		}
	}
	return t
}()

// Encoding names understood by Tokenizer.
const (
	EncodingO200k  = "o200k_base"
	EncodingCl100k = "cl100k_base"
)

// o200kPrefixes are the model families tokenized with o200k_base.
var o200kPrefixes = []string{"gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4"}

// EncodingForModel returns the tokenizer encoding used to count model's
// tokens: o200k_base for the gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and o-series
// families, cl100k_base for everything else (other OpenAI models exactly;
// non-OpenAI models approximately, since their own tokenizers are not
// available).
func EncodingForModel(model string) string {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 { // "openai/gpt-4o" style names
		m = m[i+1:]
	}
	for _, p := range o200kPrefixes {
		if m == p || strings.HasPrefix(m, p+"-") {
			return EncodingO200k
		}
	}
	return EncodingCl100k
}

// Tokenizer counts tokens with real BPE encodings. Codecs are loaded on first
// use (each takes a few hundred milliseconds and tens of MB) and shared; a
// Tokenizer is safe for concurrent use. Create one per process and pass it
// where needed.
type Tokenizer struct {
	o200k  lazyCodec
	cl100k lazyCodec
}

type lazyCodec struct {
	once  sync.Once
	codec tokenizer.Codec
	err   error
}

func (l *lazyCodec) get(enc tokenizer.Encoding) (tokenizer.Codec, error) {
	l.once.Do(func() {
		l.codec, l.err = tokenizer.Get(enc)
	})
	return l.codec, l.err
}

// NewTokenizer returns a Tokenizer; codecs load lazily.
func NewTokenizer() *Tokenizer { return &Tokenizer{} }

// Preload loads both codecs now, so the first request does not pay for it.
func (t *Tokenizer) Preload() error {
	if _, err := t.o200k.get(tokenizer.O200kBase); err != nil {
		return fmt.Errorf("load %s: %w", EncodingO200k, err)
	}
	if _, err := t.cl100k.get(tokenizer.Cl100kBase); err != nil {
		return fmt.Errorf("load %s: %w", EncodingCl100k, err)
	}
	return nil
}

// CountTokens returns the exact number of tokens text encodes to with model's
// encoding (see EncodingForModel). Usage built from it should be marked
// Estimated: it excludes the chat-format overhead and, for non-OpenAI models,
// uses a stand-in encoding.
func (t *Tokenizer) CountTokens(model, text string) (int64, error) {
	var (
		c   tokenizer.Codec
		err error
	)
	if EncodingForModel(model) == EncodingO200k {
		c, err = t.o200k.get(tokenizer.O200kBase)
	} else {
		c, err = t.cl100k.get(tokenizer.Cl100kBase)
	}
	if err != nil {
		return 0, fmt.Errorf("load tokenizer for %q: %w", model, err)
	}
	n, err := c.Count(text)
	if err != nil {
		return 0, fmt.Errorf("count tokens for %q: %w", model, err)
	}
	return int64(n), nil
}

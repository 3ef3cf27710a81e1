package guard

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/pkg/guard/ngram"
)

//go:embed model/injection.bin
var modelData []byte

// DefaultInjectionThreshold is the decision threshold shipped with the
// embedded model (chosen by pkg/guard/cmd/train on the validation split).
func DefaultInjectionThreshold() float64 {
	m, err := loadModel()
	if err != nil {
		return 0.5
	}
	return float64(m.Threshold)
}

func loadModel() (*ngram.Model, error) {
	m, err := ngram.Decode(modelData)
	if err != nil {
		return nil, fmt.Errorf("guard: embedded injection model: %w", err)
	}
	return m, nil
}

func resolveThreshold(cfg float64, m *ngram.Model) float64 {
	if cfg > 0 {
		return cfg
	}
	if m != nil {
		return float64(m.Threshold)
	}
	return DefaultInjectionThreshold()
}

// injectionDetector scores text for prompt injection and jailbreaks, and
// looks through obfuscation: invisible characters and confusables are
// normalised away, Unicode tag characters ("ASCII smuggling") are decoded,
// and base64 or rot13 payloads that decode to text are scored too.
type injectionDetector struct {
	model     *ngram.Model
	threshold float64
	scratch   sync.Pool // *injScratch
}

type injScratch struct {
	acc   []ngram.WindowAcc
	plain []byte
	norm  []byte
	dec   []byte
}

func newInjectionDetector(m *ngram.Model, threshold float64) *injectionDetector {
	d := &injectionDetector{model: m, threshold: resolveThreshold(threshold, m)}
	d.scratch.New = func() any {
		return &injScratch{plain: make([]byte, 0, 4096), norm: make([]byte, 0, 4096), dec: make([]byte, 0, 1024)}
	}
	return d
}

func (*injectionDetector) Name() string { return DetectorInjection }

func (*injectionDetector) Types() []string { return []string{TypePromptInjection, TypeHiddenText} }

func injection(typ string, start, end int, score float64) Finding {
	return Finding{Detector: DetectorInjection, Type: typ, Start: start, End: end, Score: score}
}

func (d *injectionDetector) Detect(text string, dst []Finding) []Finding {
	sc := d.scratch.Get().(*injScratch)
	defer d.scratch.Put(sc)

	score := d.scoreText(sc, text)
	if score >= d.threshold {
		dst = append(dst, injection(TypePromptInjection, 0, len(text), score))
	}
	// Hidden text in Unicode tag characters.
	if s, e, ok := findTagRun(text); ok {
		dst = append(dst, injection(TypeHiddenText, s, e, 1))
	}
	// Encoded payloads, scored only when the plain text did not already
	// cross the threshold.
	if score < d.threshold {
		sc.norm, sc.plain = sc.plain, sc.norm // keep the normalised text while sc.norm is reused
		dst = d.scanEncoded(sc, text, sc.plain, dst)
	}
	return dst
}

// Score returns the injection score of text in [0,1] (the maximum over the
// plain text and any hidden or encoded payload).
func (d *injectionDetector) Score(text string) float64 {
	fs := d.Detect(text, nil)
	best := 0.0
	for _, f := range fs {
		best = max(best, f.Score)
	}
	if best == 0 {
		sc := d.scratch.Get().(*injScratch)
		best = d.scoreText(sc, text)
		d.scratch.Put(sc)
	}
	return best
}

// scoreText normalises text (decoding tag characters into the text they
// hide) and returns the highest window score.
func (d *injectionDetector) scoreText(sc *injScratch, text string) float64 {
	sc.norm = ngram.Normalize(sc.norm, text)
	sc.norm = appendTagText(sc.norm, text)
	return d.scoreNorm(sc, sc.norm)
}

// minInjectionBytes is the shortest normalised text scored as an
// injection. A greeting or a one-word reply ("hello", "thanks", "ok") holds
// no instruction, whatever weight a lone word has: greetings open many
// jailbreaks in the training data, so "hello" alone scored above the
// threshold. The shortest attacks in the public corpora ("generate c++",
// "Say “Access Granted”") are longer.
const minInjectionBytes = 12

func (d *injectionDetector) scoreNorm(sc *injScratch, norm []byte) float64 {
	if len(bytes.TrimSpace(norm)) < minInjectionBytes {
		return 0
	}
	if cap(sc.acc) < len(norm)+1 {
		sc.acc = make([]ngram.WindowAcc, len(norm)+1)
	}
	// Besides the whole text, windows of the model's window size
	// (overlapping by half) are scored and the highest score counts, so
	// an injection inside a long benign document (a tool result, a web
	// page) is not diluted by it.
	_, best := d.model.ScoreNorm(norm, sc.acc[:cap(sc.acc)])
	return best
}

// findTagRun finds the first run of Unicode tag characters (U+E0000..
// U+E007F) that is not part of an emoji flag sequence (U+1F3F4 followed by
// tags and CANCEL TAG).
func findTagRun(text string) (int, int, bool) {
	for off := 0; off < len(text); {
		i := strings.Index(text[off:], "\U000E0000"[:2]) // F3 A0: lead bytes of U+E0000..E0FFF
		if i < 0 {
			return 0, 0, false
		}
		s := off + i
		e := s
		for e < len(text) {
			r, size := utf8.DecodeRuneInString(text[e:])
			if r < 0xE0000 || r > 0xE007F {
				break
			}
			e += size
		}
		if e == s {
			off = s + 2
			continue
		}
		if !strings.HasSuffix(text[:s], "\U0001F3F4") {
			return s, e, true
		}
		off = e
	}
	return 0, 0, false
}

// appendTagText appends " " + the ASCII text hidden in tag characters.
func appendTagText(dst []byte, text string) []byte {
	if strings.IndexByte(text, 0xF3) < 0 {
		return dst
	}
	added := false
	for _, r := range text {
		if r >= 0xE0020 && r <= 0xE007E {
			if !added {
				dst = append(dst, ' ')
				added = true
			}
			c := byte(r - 0xE0000)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
	}
	return dst
}

func isB64Byte(c byte) bool {
	return isAlnum(c) || c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}

// scanEncoded scores base64 runs that decode to text and, when the text
// looks rot13-encoded, the rot13 decoding of the whole text. norm is the
// normalised text (it must not alias sc.norm, which is reused here).
func (d *injectionDetector) scanEncoded(sc *injScratch, text string, norm []byte, dst []Finding) []Finding {
	n := len(text)
	for i := 0; i < n; i++ {
		if !isB64Byte(text[i]) {
			continue
		}
		j := i
		for j < n && isB64Byte(text[j]) {
			j++
		}
		if j-i >= 24 {
			if dec, ok := decodeBase64Text(sc.dec[:0], text[i:j]); ok {
				sc.dec = dec
				sc.norm = ngram.Normalize(sc.norm, string(dec))
				if s := d.scoreNorm(sc, sc.norm); s >= d.threshold {
					dst = append(dst, injection(TypePromptInjection, i, j, s))
				}
			}
		}
		i = j
	}
	if rot13Likely(norm) {
		sc.dec = append(sc.dec[:0], norm...)
		rot13(sc.dec)
		if s := d.scoreNorm(sc, sc.dec); s >= d.threshold {
			dst = append(dst, injection(TypePromptInjection, 0, len(text), s))
		}
	}
	return dst
}

// decodeBase64Text decodes s (standard or URL alphabet, padded or not)
// and reports whether the result looks like natural-language text:
// at least 12 bytes, mostly printable ASCII, with spaces.
func decodeBase64Text(dst []byte, s string) ([]byte, bool) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	need := enc.DecodedLen(len(s))
	if cap(dst) < need {
		dst = make([]byte, need)
	}
	dst = dst[:need]
	n, err := enc.Decode(dst, []byte(s))
	if err != nil || n < 12 {
		return dst[:0], false
	}
	dst = dst[:n]
	printable, spaces := 0, 0
	for _, c := range dst {
		if c == ' ' {
			spaces++
		}
		if (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' {
			printable++
		}
	}
	return dst, printable*10 >= n*9 && spaces >= 2
}

// rot13Likely reports text that mentions rot13 or whose letter
// frequencies look like rot13 English: the letters that English uses most
// (e, t, a) become r, g, n.
func rot13Likely(norm []byte) bool {
	for off := 0; ; {
		i := bytes.Index(norm[off:], []byte("rot"))
		if i < 0 {
			break
		}
		rest := norm[off+i+3:]
		if bytes.HasPrefix(rest, []byte("13")) || bytes.HasPrefix(rest, []byte("-13")) || bytes.HasPrefix(rest, []byte(" 13")) {
			return true
		}
		off += i + 3
	}
	var hist [256]int32
	for _, c := range norm {
		hist[c]++
	}
	eta := hist['e'] + hist['t'] + hist['a']
	rgn := hist['r'] + hist['g'] + hist['n']
	var letters int32
	for c := 'a'; c <= 'z'; c++ {
		letters += hist[c]
	}
	return letters >= 24 && rgn > eta
}

func rot13(b []byte) {
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = 'a' + (c-'a'+13)%26
		case 'A' <= c && c <= 'Z':
			b[i] = 'A' + (c-'A'+13)%26
		}
	}
}

package cache

import (
	"unicode"
	"unicode/utf8"
)

// token is one word of a prompt, as seen by the embedder and the difference
// guard.
type token struct {
	lower   string
	number  bool // all digits (after removing separators) or a decimal
	capital bool // first rune upper case in the original text
	initial bool // first token of a sentence
}

// tokenize splits text into words (letters and digits; apostrophes inside a
// word are kept), lower-cases them and records case and position facts. Digit
// groups joined by ',' or '.' stay one number token ("1,000", "3.14").
func tokenize(text string, dst []token) []token {
	sentenceStart := true
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if !isWordRune(r) {
			if r == '.' || r == '?' || r == '!' || r == '\n' || r == ':' || r == ';' {
				sentenceStart = true
			}
			i += size
			continue
		}
		start := i
		allDigits := true
		first := r
		for i < len(text) {
			r, size = utf8.DecodeRuneInString(text[i:])
			if isWordRune(r) {
				if !unicode.IsDigit(r) {
					allDigits = false
				}
				i += size
				continue
			}
			// Keep "don't", "1,000", "3.14" as single tokens.
			if i+size < len(text) {
				next, _ := utf8.DecodeRuneInString(text[i+size:])
				if r == '\'' && unicode.IsLetter(next) && !allDigits {
					i += size
					continue
				}
				if (r == ',' || r == '.') && allDigits && unicode.IsDigit(next) {
					i += size
					continue
				}
			}
			break
		}
		// Keep language names like "C++", "C#", "F#" distinct from "C".
		if !allDigits && i < len(text) && (text[i] == '+' || text[i] == '#') {
			if i+1 < len(text) && text[i] == '+' && text[i+1] == '+' {
				i += 2
			} else if text[i] == '#' {
				i++
			}
		}
		word := text[start:i]
		tok := token{
			lower:   lowerASCIIFast(word),
			number:  allDigits,
			capital: unicode.IsUpper(first),
			initial: sentenceStart,
		}
		if allDigits {
			tok.lower = stripNumberSeparators(tok.lower)
		}
		dst = append(dst, tok)
		sentenceStart = false
	}
	return dst
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func lowerASCIIFast(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return toLowerUnicode(s)
		}
		if c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= utf8.RuneSelf {
					return toLowerUnicode(s)
				}
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func toLowerUnicode(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = utf8.AppendRune(b, unicode.ToLower(r))
	}
	return string(b)
}

func stripNumberSeparators(s string) string {
	hasComma := false
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			hasComma = true
			break
		}
	}
	if !hasComma {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ',' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// stem is a deliberately light suffix stripper so that "study", "studies"
// and "studying" meet, without a dictionary.
func stem(w string) string {
	if len(w) <= 4 {
		return w
	}
	for _, suf := range [...]string{"ations", "ation", "ings", "ing", "ies", "ied", "ers", "er", "ed", "es", "ly", "s", "'s"} {
		if len(w)-len(suf) >= 3 && w[len(w)-len(suf):] == suf {
			base := w[:len(w)-len(suf)]
			if suf == "ies" || suf == "ied" {
				return base + "y"
			}
			if suf == "s" && base[len(base)-1] == 's' {
				return w
			}
			return base
		}
	}
	return w
}

// fnv64 is FNV-1a: deterministic across processes (vectors are shared through
// Redis), allocation free.
func fnv64(seed byte, s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	h ^= uint64(seed)
	h *= prime
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

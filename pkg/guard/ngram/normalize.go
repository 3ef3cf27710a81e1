package ngram

import (
	"unicode"
	"unicode/utf8"
)

// Normalize appends the normalised form of text to dst[:0] and returns it.
// ASCII letters are lower-cased, look-alike letters from other scripts are
// folded to Latin (see Fold), invisible format characters are dropped, and
// every run of white space becomes one space; leading and trailing space is
// removed. It does not allocate when dst has enough capacity.
func Normalize(dst []byte, text string) []byte {
	dst = dst[:0]
	space := true  // suppresses leading and repeated spaces
	dirty := false // some token was not judged on the fast path: FoldOpaque must run
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			if isASCIIIDByte(c) && (i == 0 || !isASCIIIDByte(text[i-1])) {
				// A run of ASCII letters, digits, '_' and '-': when it is a
				// whole output token (nothing ID-like on either side), it is
				// lower-cased and judged here, in one pass.
				j, flips, keyFlips, sep := i, 0, 0, false
				for j < len(text) && isASCIIIDByte(text[j]) {
					if j > i && 'A' <= text[j] && text[j] <= 'Z' && 'a' <= text[j-1] && text[j-1] <= 'z' {
						flips++
						if sep {
							keyFlips++
						}
					}
					sep = sep || text[j] == '_' || text[j] == '-'
					j++
				}
				// Two flips from lower to upper case (xKqTzR), or one after
				// the prefix of a key of 8+ bytes (INV-EatHfusq,
				// tok_abCdefgh).
				mixed := isASCIIAlnum(c) && (j-i >= 6 && flips >= 2 || j-i >= 8 && keyFlips >= 1)
				clean := (len(dst) == 0 || !isIDByte(dst[len(dst)-1])) && (j == len(text) || text[j] < utf8.RuneSelf && !isASCIIIDByte(text[j]))
				switch {
				case mixed:
					dst = append(dst, OpaqueMark)
				case clean:
					start := len(dst)
					for k := i; k < j; k++ {
						b := text[k]
						if 'A' <= b && b <= 'Z' {
							b += 'a' - 'A'
						}
						dst = append(dst, b)
					}
					if j-i >= 4 && opaque(dst[start:]) {
						dst = append(dst[:start], OpaqueMark)
					}
				}
				if mixed || clean {
					dirty = dirty || !clean
					space = false
					i = j
					continue
				}
				dirty = true
			}
			i++
			switch {
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
				if !space {
					dst = append(dst, ' ')
					space = true
				}
				continue
			}
			dst = append(dst, c)
			space = false
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if IsInvisible(r) {
			continue
		}
		if f := Fold(r); f != 0 {
			dst = append(dst, f)
			dirty = true
			space = false
			continue
		}
		if unicode.IsSpace(r) {
			if !space {
				dst = append(dst, ' ')
				space = true
			}
			continue
		}
		r = unicode.ToLower(r)
		if f := Fold(r); f != 0 { // a capital whose lower case is a look-alike
			dst = append(dst, f)
			dirty = true
		} else if a := unaccent(r); a != "" {
			dst = append(dst, a...)
			dirty = true
		} else {
			dst = utf8.AppendRune(dst, r)
		}
		space = false
	}
	if len(dst) > 0 && dst[len(dst)-1] == ' ' {
		dst = dst[:len(dst)-1]
	}
	if !dirty {
		return dst // every token was judged on the fast path
	}
	return FoldOpaque(dst)
}

func isASCIILetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isASCIIAlnum(c byte) bool  { return isASCIILetter(c) || ('0' <= c && c <= '9') }
func isASCIIIDByte(c byte) bool { return isASCIIAlnum(c) || c == '_' || c == '-' }

// OpaqueMark replaces opaque identifiers in normalised text.
const OpaqueMark = '#'

func isIDByte(c byte) bool {
	return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '_' || c == '-'
}

// FoldOpaque replaces, in place, every token of normalised (lower-case)
// text that reads as an opaque identifier rather than a word — record ids,
// UUIDs, hashes, nonces, order numbers — by OpaqueMark, so that a score
// does not depend on which id a prompt carries. A token is a run of
// [a-z0-9_-]; it is opaque when it mixes letters and digits with at least
// two changes between them ("a1b2", UUID groups) or is 8+ bytes long
// ("cus_9f8e7d6c5b", "dfd31144") or 6+ bytes of hex ("ef5563"), when it is 5+ digits, or when it is 6+ letters with
// a run of 6 consonants or fewer than one vowel in eight (lower-cased
// random letters). Words such as "gpt4", "10th", "base64", "prompt",
// "skills", "deutschland" and years stay.
func FoldOpaque(b []byte) []byte {
	out := b[:0]
	for i := 0; i < len(b); {
		if !isIDByte(b[i]) {
			out = append(out, b[i])
			i++
			continue
		}
		j := i
		for j < len(b) && isIDByte(b[j]) {
			j++
		}
		switch {
		case j-i >= 4 && opaque(b[i:j]):
			out = append(out, OpaqueMark)
		case len(out) == i:
			out = b[:j] // nothing folded yet: the bytes are already in place
		default:
			out = append(out, b[i:j]...) // copy within b: out never overtakes i
		}
		i = j
	}
	return out
}

// idClass classifies the bytes opaque looks at: 1 vowel (y counts), 2
// consonant, 3 digit, 0 anything else.
var idClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 2
	}
	for _, c := range "aeiouy" {
		t[c] = 1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 3
	}
	return t
}()

func opaque(tok []byte) bool {
	var letters, digits, changes, vowels, cons, maxCons int
	hexOnly := true
	prev := uint8(0)
	for _, c := range tok {
		cls := idClass[c]
		switch cls {
		case 0:
			continue
		case 1:
			letters++
			vowels++
			cons = 0
			hexOnly = hexOnly && c <= 'f'
		case 2:
			letters++
			cons++
			maxCons = max(maxCons, cons)
			hexOnly = hexOnly && c <= 'f'
		case 3:
			digits++
		}
		isDigit := cls == 3
		if prev != 0 && isDigit != (prev == 3) {
			changes++
		}
		prev = cls
	}
	switch {
	case letters > 0 && digits > 0:
		return changes >= 2 || len(tok) >= 8 || len(tok) >= 6 && hexOnly
	case digits >= 5 && letters == 0:
		return true
	case letters >= 6 && digits == 0:
		return maxCons >= 6 || vowels*8 < letters
	}
	return false
}

// IsInvisible reports whether r renders as nothing and is commonly used to
// hide or split words: zero-width characters, bidirectional controls, the
// soft hyphen, variation selectors and Unicode tag characters.
func IsInvisible(r rune) bool {
	switch {
	case r == 0x00AD, r == 0x034F, r == 0x061C, r == 0x115F, r == 0x1160, r == 0x180E, r == 0x3164, r == 0xFEFF, r == 0xFFA0:
		return true
	case 0x200B <= r && r <= 0x200F:
		return true
	case 0x202A <= r && r <= 0x202E:
		return true
	case 0x2060 <= r && r <= 0x206F:
		return true
	case 0xFE00 <= r && r <= 0xFE0F:
		return true
	case 0xE0000 <= r && r <= 0xE007F: // tags
		return true
	case 0xE0100 <= r && r <= 0xE01EF:
		return true
	}
	return false
}

// Fold maps a non-ASCII letter or digit that looks like an ASCII one to the
// lower-case ASCII byte, or returns 0. It covers fullwidth forms,
// mathematical alphanumeric symbols, circled letters, and the Cyrillic and
// Greek letters that are confusable with Latin ones.
func Fold(r rune) byte {
	switch {
	case 0xFF01 <= r && r <= 0xFF5E: // fullwidth ASCII
		c := byte(r - 0xFEE0)
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c
	case 0x1D400 <= r && r <= 0x1D6A3: // mathematical letters, 13 styles of A-Z a-z
		idx := byte((r - 0x1D400) % 52)
		if idx >= 26 {
			idx -= 26
		}
		return 'a' + idx
	case 0x1D7CE <= r && r <= 0x1D7FF: // mathematical digits
		return '0' + byte((r-0x1D7CE)%10)
	case 0x24B6 <= r && r <= 0x24CF: // circled capital letters
		return 'a' + byte(r-0x24B6)
	case 0x24D0 <= r && r <= 0x24E9: // circled small letters
		return 'a' + byte(r-0x24D0)
	}
	switch r {
	case 'а', 'А', 'α', 'Α':
		return 'a'
	case 'В', 'β', 'Β', 'ь':
		return 'b'
	case 'с', 'С', 'ϲ':
		return 'c'
	case 'ԁ':
		return 'd'
	case 'е', 'Е', 'ε', 'Ε', 'ё':
		return 'e'
	case 'һ', 'Н', 'Η':
		return 'h'
	case 'і', 'І', 'ι', 'Ι', 'ı':
		return 'i'
	case 'ј', 'Ј':
		return 'j'
	case 'к', 'К', 'κ', 'Κ':
		return 'k'
	case 'ӏ':
		return 'l'
	case 'М', 'Μ':
		return 'm'
	case 'п', 'Ν', 'η':
		return 'n'
	case 'о', 'О', 'ο', 'Ο', 'σ':
		return 'o'
	case 'р', 'Р', 'ρ', 'Ρ':
		return 'p'
	case 'ԛ':
		return 'q'
	case 'г':
		return 'r'
	case 'ѕ', 'Ѕ':
		return 's'
	case 'т', 'Т', 'τ', 'Τ':
		return 't'
	case 'υ', 'μ':
		return 'u'
	case 'ν', 'ѵ':
		return 'v'
	case 'ԝ', 'ω', 'ш':
		return 'w'
	case 'х', 'Х', 'χ', 'Χ':
		return 'x'
	case 'у', 'У', 'γ', 'Υ':
		return 'y'
	case 'Ζ':
		return 'z'
	}
	return 0
}

// latinBase holds the unaccented ASCII spelling of the lower-case letters
// U+00DF..U+017F (Latin-1 Supplement and Latin Extended-A); "" for the
// characters in that range that are not letters.
var latinBase = func() (t [0x180 - 0xDF]string) {
	groups := []struct {
		base string
		rs   string
	}{
		{"a", "àáâãäåāăą"}, {"ae", "æ"}, {"c", "çćĉċč"}, {"d", "ðďđ"},
		{"e", "èéêëēĕėęě"}, {"g", "ĝğġģ"}, {"h", "ĥħ"}, {"i", "ìíîïĩīĭįı"},
		{"ij", "ĳ"}, {"j", "ĵ"}, {"k", "ķĸ"}, {"l", "ĺļľŀł"}, {"n", "ñńņňŉŋ"},
		{"o", "òóôõöøōŏő"}, {"oe", "œ"}, {"r", "ŕŗř"}, {"s", "śŝşšſ"},
		{"ss", "ß"}, {"t", "ţťŧ"}, {"th", "þ"}, {"u", "ùúûüũūŭůűų"},
		{"w", "ŵ"}, {"y", "ýÿŷ"}, {"z", "źżž"},
	}
	for _, g := range groups {
		for _, r := range g.rs {
			t[r-0xDF] = g.base
		}
	}
	return t
}()

// unaccent returns the ASCII spelling of an accented lower-case Latin
// letter ("ä" -> "a", "ß" -> "ss"), or "" for any other rune.
func unaccent(r rune) string {
	if r < 0xDF || r >= 0x180 {
		return ""
	}
	return latinBase[r-0xDF]
}

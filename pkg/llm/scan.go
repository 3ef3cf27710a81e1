package llm

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth is the deepest nesting of JSON objects and arrays that any parser
// in this package accepts: `{}` is depth 1, `{"a":[{}]}` depth 3. Real
// requests and responses stay far below it.
const MaxDepth = 64

// Structural errors found by the pre-scan that every parser in this package
// runs before reading a body. For requests they mean HTTP 400; for responses
// and stream chunks the body is treated as malformed.
var (
	// ErrTooDeep: objects and arrays nest deeper than MaxDepth.
	ErrTooDeep = errors.New("JSON nesting exceeds the depth limit")
	// ErrDuplicateKey: an object names the same key twice (compared after
	// unescaping, so "max_tokens" and "max\u005ftokens" are the same key).
	// The error wraps it with the key's path, e.g. `messages[0].role`.
	ErrDuplicateKey = errors.New("duplicate object key")
)

// linearKeys is how many keys of one object are compared pairwise as they
// arrive; an object with more is checked once, when it closes, by sorting
// its keys (n log n time, 16 bytes per key, no map).
const linearKeys = 16

// scanFrame is one open object or array.
type scanFrame struct {
	obj   bool
	n     int    // keys (object) or elements (array) seen so far
	first int    // index in keys of this object's first key
	key   string // current key (object), for error paths
}

const (
	stValue = iota // expecting a value
	stAfter        // a value ended: expecting ',', a closer or the end
	stKey          // expecting an object key
)

// scanJSON checks that data is exactly one valid JSON value (RFC 8259; UTF-8
// is not checked) nested at most MaxDepth deep, with no duplicate object key
// at any depth. Errors are ErrInvalidJSON, ErrTooDeep or ErrDuplicateKey
// (wrapped with the key path).
//
// It is one pass over the bytes without recursion: a depth counter over a
// fixed stack, strings and escapes respected, and the keys of each open
// object checked for duplicates. Nothing is allocated in proportion to the
// depth; allocations happen only for keys containing escapes and to hold
// the keys of open objects beyond the first 32 (16 bytes per key).
func scanJSON(data []byte) error {
	var (
		stack   [MaxDepth]scanFrame
		depth   int
		keysBuf [32]string
		keys    = keysBuf[:0]
		i       int
		state   = stValue
	)
	for {
		i = skipSpace(data, i)
		switch state {
		case stValue:
			if i >= len(data) {
				return ErrInvalidJSON
			}
			switch c := data[i]; c {
			case '{', '[':
				if depth == MaxDepth {
					return fmt.Errorf("%w of %d", ErrTooDeep, MaxDepth)
				}
				stack[depth] = scanFrame{obj: c == '{', first: len(keys)}
				depth++
				i = skipSpace(data, i+1)
				if i < len(data) && data[i] == c+2 { // '}' is '{'+2, ']' is '['+2
					depth--
					i++
					state = stAfter
				} else if c == '{' {
					state = stKey
				}
				continue
			case '"':
				i, _ = scanString(data, i)
			case 't':
				i = literal(data, i, "true")
			case 'f':
				i = literal(data, i, "false")
			case 'n':
				i = literal(data, i, "null")
			default:
				i = scanNumber(data, i)
			}
			if i < 0 {
				return ErrInvalidJSON
			}
			state = stAfter
		case stAfter:
			if depth == 0 {
				if i != len(data) {
					return ErrInvalidJSON
				}
				return nil
			}
			if i >= len(data) {
				return ErrInvalidJSON
			}
			top := &stack[depth-1]
			switch c := data[i]; {
			case c == ',':
				i++
				if top.obj {
					state = stKey
				} else {
					top.n++
					state = stValue
				}
			case c == '}' && top.obj, c == ']' && !top.obj:
				if top.n > linearKeys {
					if k, dup := sortedDup(keys[top.first:]); dup {
						top.key = k
						return fmt.Errorf("%w %q", ErrDuplicateKey, keyPath(stack[:depth]))
					}
				}
				keys = keys[:top.first]
				depth--
				i++
			default:
				return ErrInvalidJSON
			}
		case stKey:
			if i >= len(data) || data[i] != '"' {
				return ErrInvalidJSON
			}
			end, escaped := scanString(data, i)
			if end < 0 {
				return ErrInvalidJSON
			}
			raw := data[i+1 : end-1]
			var key string
			if escaped {
				key = unescape(raw)
			} else {
				key = unsafe.String(unsafe.SliceData(raw), len(raw))
			}
			var dup bool
			keys, dup = addKey(&stack[depth-1], keys, key)
			if dup {
				return fmt.Errorf("%w %q", ErrDuplicateKey, keyPath(stack[:depth]))
			}
			i = skipSpace(data, end)
			if i >= len(data) || data[i] != ':' {
				return ErrInvalidJSON
			}
			i++
			state = stValue
		}
	}
}

// addKey records key in the object top, whose keys so far are
// keys[top.first:], and reports whether it is already there (checked here
// for the first linearKeys keys, at the close of the object beyond).
func addKey(top *scanFrame, keys []string, key string) ([]string, bool) {
	top.key = key
	top.n++
	if top.n <= linearKeys {
		for _, k := range keys[top.first:] {
			if k == key {
				return keys, true
			}
		}
	}
	return append(keys, key), false
}

// sortedDup sorts keys in place and returns a key present twice.
func sortedDup(keys []string) (string, bool) {
	slices.Sort(keys)
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			return keys[i], true
		}
	}
	return "", false
}

// keyPath renders the location of the current key, e.g. `messages[0].role`.
func keyPath(stack []scanFrame) string {
	var b strings.Builder
	for i := range stack {
		f := &stack[i]
		if f.obj {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.n))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func literal(data []byte, i int, lit string) int {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanNumber returns the index after the number at i, or -1.
func scanNumber(data []byte, i int) int {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return -1
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		j := digits(data, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(data, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// strStop marks the bytes that end the fast path inside a string: the
// closing quote, a backslash and the control characters JSON forbids there.
var strStop = [256]bool{'"': true, '\\': true,
	0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true,
	8: true, 9: true, 10: true, 11: true, 12: true, 13: true, 14: true, 15: true,
	16: true, 17: true, 18: true, 19: true, 20: true, 21: true, 22: true, 23: true,
	24: true, 25: true, 26: true, 27: true, 28: true, 29: true, 30: true, 31: true,
}

// scanString returns the index after the closing quote of the string opening
// at i (-1 if invalid) and whether it holds escapes.
func scanString(data []byte, i int) (end int, escaped bool) {
	j := i + 1
	for {
		for j+4 <= len(data) && !strStop[data[j]] && !strStop[data[j+1]] && !strStop[data[j+2]] && !strStop[data[j+3]] {
			j += 4
		}
		for j < len(data) && !strStop[data[j]] {
			j++
		}
		if j >= len(data) {
			return -1, false
		}
		switch data[j] {
		case '"':
			return j + 1, escaped
		case '\\':
			escaped = true
			j++
			if j >= len(data) {
				return -1, false
			}
			switch data[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(data)-j <= 4 || !isHex(data[j+1]) || !isHex(data[j+2]) || !isHex(data[j+3]) || !isHex(data[j+4]) {
					return -1, false
				}
				j += 4
			default:
				return -1, false
			}
			j++
		default: // a control character
			return -1, false
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c >= 'a':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// unescape decodes the body of a JSON string already checked by scanString.
// Lone surrogates become U+FFFD, as encoding/json does, so two keys that
// differ only in broken surrogates count as the same (rejecting more, never
// less, than a decoder that keeps them).
func unescape(raw []byte) string {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hexVal(raw[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2 = hexVal(raw[i+3 : i+7])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, raw[i])
		}
	}
	return string(out)
}

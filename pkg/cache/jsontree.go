package cache

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// jsontree is a small zero-copy JSON parser used on the request path. It
// builds a flat node arena over the input so that key derivation can both
// read fields and write a canonical form in one pass, without the reflection
// cost of encoding/json.

type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNum
	jStr
	jArr
	jObj
)

// jnode is one value. For containers, first is the index of the first child
// (-1 when empty) and children are linked through next. Object members carry
// their key in key (raw, without quotes) and keyEsc.
type jnode struct {
	kind   jkind
	esc    bool // string raw contains backslash escapes
	keyEsc bool
	raw    []byte // string: bytes between quotes; number: literal
	key    []byte
	first  int32
	next   int32
}

type jtree struct {
	nodes []jnode
	size  int // length of the parsed input
}

const maxJSONDepth = 64

var errJSON = errors.New("invalid JSON")

func parseJSON(data []byte, t *jtree) error {
	t.nodes = t.nodes[:0]
	t.size = len(data)
	p := jparser{data: data, t: t}
	p.skipWS()
	if _, err := p.value(0); err != nil {
		return err
	}
	p.skipWS()
	if p.pos != len(p.data) {
		return fmt.Errorf("%w: trailing data at offset %d", errJSON, p.pos)
	}
	return nil
}

type jparser struct {
	data []byte
	pos  int
	t    *jtree
}

func (p *jparser) skipWS() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) errAt(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errJSON, what, p.pos)
}

func (p *jparser) add(n jnode) int32 {
	p.t.nodes = append(p.t.nodes, n)
	return int32(len(p.t.nodes) - 1)
}

func (p *jparser) value(depth int) (int32, error) {
	if depth > maxJSONDepth {
		return -1, p.errAt("nesting too deep")
	}
	if p.pos >= len(p.data) {
		return -1, p.errAt("unexpected end")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		raw, esc, err := p.str()
		if err != nil {
			return -1, err
		}
		return p.add(jnode{kind: jStr, raw: raw, esc: esc, first: -1, next: -1}), nil
	case c == 't':
		return p.literal("true", jTrue)
	case c == 'f':
		return p.literal("false", jFalse)
	case c == 'n':
		return p.literal("null", jNull)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return -1, p.errAt("unexpected character")
	}
}

func (p *jparser) literal(lit string, k jkind) (int32, error) {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return -1, p.errAt("bad literal")
	}
	p.pos += len(lit)
	return p.add(jnode{kind: k, first: -1, next: -1}), nil
}

func (p *jparser) number() (int32, error) {
	start := p.pos
	d := p.data
	if d[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		s := p.pos
		for p.pos < len(d) && d[p.pos] >= '0' && d[p.pos] <= '9' {
			p.pos++
		}
		return p.pos - s
	}
	if p.pos < len(d) && d[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return -1, p.errAt("bad number")
	}
	if p.pos < len(d) && d[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return -1, p.errAt("bad fraction")
		}
	}
	if p.pos < len(d) && (d[p.pos] == 'e' || d[p.pos] == 'E') {
		p.pos++
		if p.pos < len(d) && (d[p.pos] == '+' || d[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return -1, p.errAt("bad exponent")
		}
	}
	return p.add(jnode{kind: jNum, raw: d[start:p.pos], first: -1, next: -1}), nil
}

// str parses a string starting at the opening quote and returns the raw bytes
// between the quotes. Escapes are validated here and decoded on demand.
func (p *jparser) str() ([]byte, bool, error) {
	d := p.data
	p.pos++ // opening quote
	start := p.pos
	esc := false
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			raw := d[start:p.pos]
			p.pos++
			return raw, esc, nil
		case c == '\\':
			esc = true
			if p.pos+1 >= len(d) {
				return nil, false, p.errAt("bad escape")
			}
			switch d[p.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos += 2
			case 'u':
				if p.pos+6 > len(d) {
					return nil, false, p.errAt("bad unicode escape")
				}
				for _, h := range d[p.pos+2 : p.pos+6] {
					if hexVal(h) < 0 {
						return nil, false, p.errAt("bad unicode escape")
					}
				}
				p.pos += 6
			default:
				return nil, false, p.errAt("bad escape")
			}
		case c < 0x20:
			return nil, false, p.errAt("control character in string")
		default:
			// Invalid UTF-8 is accepted, as encoding/json (and providers)
			// do; the bytes are hashed as they are.
			p.pos++
		}
	}
	return nil, false, p.errAt("unterminated string")
}

func (p *jparser) array(depth int) (int32, error) {
	idx := p.add(jnode{kind: jArr, first: -1, next: -1})
	p.pos++
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return idx, nil
	}
	prev := int32(-1)
	for {
		p.skipWS()
		child, err := p.value(depth + 1)
		if err != nil {
			return -1, err
		}
		if prev < 0 {
			p.t.nodes[idx].first = child
		} else {
			p.t.nodes[prev].next = child
		}
		prev = child
		p.skipWS()
		if p.pos >= len(p.data) {
			return -1, p.errAt("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return idx, nil
		default:
			return -1, p.errAt("expected , or ]")
		}
	}
}

func (p *jparser) object(depth int) (int32, error) {
	idx := p.add(jnode{kind: jObj, first: -1, next: -1})
	p.pos++
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return idx, nil
	}
	prev := int32(-1)
	for {
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return -1, p.errAt("expected object key")
		}
		key, keyEsc, err := p.str()
		if err != nil {
			return -1, err
		}
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return -1, p.errAt("expected :")
		}
		p.pos++
		p.skipWS()
		child, err := p.value(depth + 1)
		if err != nil {
			return -1, err
		}
		p.t.nodes[child].key = key
		p.t.nodes[child].keyEsc = keyEsc
		if prev < 0 {
			p.t.nodes[idx].first = child
		} else {
			p.t.nodes[prev].next = child
		}
		prev = child
		p.skipWS()
		if p.pos >= len(p.data) {
			return -1, p.errAt("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return idx, nil
		default:
			return -1, p.errAt("expected , or }")
		}
	}
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescape appends the decoded form of a validated raw JSON string to dst.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(raw[i+2 : i+6]))
			i += 6
			if utf16IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 := rune(hex4(raw[i+2 : i+6]))
					if dec := decodeSurrogate(r, r2); dec != utf8.RuneError {
						i += 6
						dst = utf8.AppendRune(dst, dec)
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) int {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

func utf16IsSurrogate(r rune) bool { return r >= 0xd800 && r < 0xe000 }

func decodeSurrogate(r1, r2 rune) rune {
	if r1 >= 0xd800 && r1 < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000 {
		return (r1-0xd800)<<10 | (r2 - 0xdc00) + 0x10000
	}
	return utf8.RuneError
}

// appendQuoted appends s as a canonical JSON string: only '"', '\\' and
// control characters are escaped. Runs of plain bytes are copied at once.
func appendQuoted(dst, s []byte) []byte {
	const hexd = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		if c < 0x20 {
			dst = append(dst, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		} else {
			dst = append(dst, '\\', c)
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func isFoldSpace(c byte) bool {
	return c <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
}

// appendFolded appends s with runs of whitespace folded to one space and
// leading/trailing whitespace removed. Words are copied at once.
func appendFolded(dst, s []byte) []byte {
	// Fast path: nothing to fold.
	clean := len(s) == 0 || (s[0] != ' ' && s[len(s)-1] != ' ')
	for i := 0; clean && i < len(s); i++ {
		if c := s[i]; isFoldSpace(c) && (c != ' ' || (i+1 < len(s) && s[i+1] == ' ')) {
			clean = false
		}
	}
	if clean {
		return append(dst, s...)
	}
	i := 0
	first := true
	for i < len(s) {
		for i < len(s) && isFoldSpace(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		j := i
		for j < len(s) && !isFoldSpace(s[j]) {
			j++
		}
		if !first {
			dst = append(dst, ' ')
		}
		first = false
		dst = append(dst, s[i:j]...)
		i = j
	}
	return dst
}

// canonWriter writes nodes in canonical form: object keys sorted, no
// insignificant whitespace, strings re-escaped minimally, non-integer numbers
// normalised. When fold is set, whitespace inside string values is folded.
type canonWriter struct {
	t       *jtree
	scratch []byte
	folded  []byte
	order   []int32
}

func (w *canonWriter) str(dst, raw []byte, esc, fold bool) []byte {
	if !esc {
		// A raw string without escapes holds no '"', '\\' or control
		// characters (the parser rejects them), so it is already canonical.
		dst = append(dst, '"')
		if fold {
			dst = appendFolded(dst, raw)
		} else {
			dst = append(dst, raw...)
		}
		return append(dst, '"')
	}
	s := unescape(w.scratch[:0], raw)
	w.scratch = s
	if fold {
		w.folded = appendFolded(w.folded[:0], s)
		s = w.folded
	}
	return appendQuoted(dst, s)
}

func (w *canonWriter) keyBytes(n *jnode) []byte {
	if !n.keyEsc {
		return n.key
	}
	return unescape(nil, n.key)
}

func (w *canonWriter) write(dst []byte, idx int32, fold bool) []byte {
	n := &w.t.nodes[idx]
	switch n.kind {
	case jNull:
		return append(dst, "null"...)
	case jTrue:
		return append(dst, "true"...)
	case jFalse:
		return append(dst, "false"...)
	case jNum:
		return appendCanonNumber(dst, n.raw)
	case jStr:
		return w.str(dst, n.raw, n.esc, fold)
	case jArr:
		dst = append(dst, '[')
		for c, i := n.first, 0; c >= 0; c, i = w.t.nodes[c].next, i+1 {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = w.write(dst, c, fold)
		}
		return append(dst, ']')
	case jObj:
		base := len(w.order)
		for c := n.first; c >= 0; c = w.t.nodes[c].next {
			w.order = append(w.order, c)
		}
		members := w.order[base:]
		slices.SortStableFunc(members, func(a, b int32) int {
			return compareBytes(w.keyBytes(&w.t.nodes[a]), w.keyBytes(&w.t.nodes[b]))
		})
		dst = append(dst, '{')
		for i := range members {
			c := w.order[base+i]
			if i > 0 {
				dst = append(dst, ',')
			}
			m := &w.t.nodes[c]
			dst = appendQuoted(dst, w.keyBytes(m))
			dst = append(dst, ':')
			dst = w.write(dst, c, fold)
		}
		w.order = w.order[:base]
		return append(dst, '}')
	}
	return dst
}

func compareBytes(a, b []byte) int {
	switch {
	case string(a) < string(b):
		return -1
	case string(a) > string(b):
		return 1
	}
	return 0
}

// appendCanonNumber keeps integer literals as written (so large seeds keep
// their precision) and normalises everything else through float64.
func appendCanonNumber(dst, raw []byte) []byte {
	integer := true
	for _, c := range raw {
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
			break
		}
	}
	if integer {
		if string(raw) == "-0" {
			return append(dst, '0')
		}
		return append(dst, raw...)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return append(dst, raw...)
	}
	if f == 0 {
		// -0e0 and -0.0 are 0, like the integer -0: a canonical form that
		// wrote "-0" would not be canonical once re-read (found by
		// FuzzCanonical).
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// member finds an object member by key (keys without escapes only).
func (t *jtree) member(obj int32, key string) int32 {
	if obj < 0 || t.nodes[obj].kind != jObj {
		return -1
	}
	for c := t.nodes[obj].first; c >= 0; c = t.nodes[c].next {
		if !t.nodes[c].keyEsc && string(t.nodes[c].key) == key {
			return c
		}
	}
	return -1
}

func (t *jtree) number(idx int32) (float64, bool) {
	if idx < 0 || t.nodes[idx].kind != jNum {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(t.nodes[idx].raw), 64)
	return f, err == nil
}

// text returns the decoded string value of idx.
// textIs reports whether node idx is a string equal to s, without allocating
// for the common unescaped case.
func (t *jtree) textIs(idx int32, s string) bool {
	if idx < 0 || t.nodes[idx].kind != jStr {
		return false
	}
	n := &t.nodes[idx]
	if !n.esc {
		return string(n.raw) == s
	}
	return string(unescape(nil, n.raw)) == s
}

func (t *jtree) text(idx int32) (string, bool) {
	if idx < 0 || t.nodes[idx].kind != jStr {
		return "", false
	}
	n := &t.nodes[idx]
	if !n.esc {
		return string(n.raw), true
	}
	return string(unescape(nil, n.raw)), true
}

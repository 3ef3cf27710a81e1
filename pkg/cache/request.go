package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Reasons reported by Request.Cacheable.
const (
	ReasonUnsupportedShape = "unsupported_shape"
	ReasonMultipleChoices  = "n_above_1"
	ReasonTemperature      = "temperature_above_ceiling"
)

// DefaultMaxTemperature is the ceiling used by the package-level NewRequest.
// Requests without a temperature are treated as temperature 1 (the OpenAI
// default).
const DefaultMaxTemperature = 1.0

// keyVersion changes whenever the key derivation changes, so that old
// entries in a shared Redis are never matched by a new derivation.
const keyVersion = "tollgate-cache-v1"

// fieldOutsideKey reports top-level request fields that do not change the
// answer: streaming is replayed from the stored completion, and user /
// metadata fields are accounting only (the tenant partitions the cache).
// messages are hashed separately (see derive).
func fieldOutsideKey(name []byte) bool {
	switch string(name) {
	case "stream", "stream_options", "user", "metadata", "store", "service_tier", "messages":
		return true
	}
	return false
}

// Request is the cache view of one chat-completions request: its keys, the
// text used for semantic lookup, and whether it may be cached. It keeps what
// the semantic tier computes of its prompt for its Lookup and Store to share,
// so it is used by one goroutine at a time (as a request's phases are).
type Request struct {
	stream       bool
	includeUsage bool
	temperature  float64
	n            int
	reason       string

	partition [32]byte // tenant, alias, params, system prompt + tools, earlier turns
	exact     [32]byte // partition + last message
	prompt    string   // last user turn, whitespace folded; "" when not a plain-text user turn

	// sem holds the prompt's semantic features once a Lookup or Store
	// computed them, for the other to reuse.
	sem promptFeatures
}

// NewRequest derives cache keys from a raw OpenAI chat-completions request
// body. It returns an error only for a body that is not a JSON object; a
// well-formed body of a shape the cache does not handle yields a Request whose
// Cacheable reports false. The temperature ceiling is DefaultMaxTemperature;
// use (*Cache).NewRequest for the configured one.
func NewRequest(tenant, alias string, body []byte) (*Request, error) {
	return newRequest(tenant, alias, body, DefaultMaxTemperature, new(keyScratch))
}

// keyScratch is newRequest's working memory (the parse tree and the hashed
// buffer), reused across requests by (*Cache).NewRequest: it was most of the
// allocation of a key derivation.
type keyScratch struct {
	t   jtree
	buf []byte
	w   canonWriter
}

// maxPooledScratch bounds what a pooled keyScratch keeps after a very large
// body (bytes of the hash buffer; the parse tree is dropped alongside).
const maxPooledScratch = 1 << 20

// reset drops the references into the last body so a pooled scratch does not
// keep it alive, and the buffers of an outsized body.
func (sc *keyScratch) reset() {
	clear(sc.t.nodes)
	sc.t.nodes = sc.t.nodes[:0]
	sc.w.t = nil
	if cap(sc.buf) > maxPooledScratch {
		*sc = keyScratch{}
	}
}

func newRequest(tenant, alias string, body []byte, maxTemp float64, sc *keyScratch) (*Request, error) {
	t := &sc.t
	if cap(t.nodes) == 0 {
		t.nodes = make([]jnode, 0, 16+len(body)/24)
	}
	if err := parseJSON(body, t); err != nil {
		return nil, fmt.Errorf("parse request body: %w", err)
	}
	if t.nodes[0].kind != jObj {
		return nil, fmt.Errorf("parse request body: %w: not an object", errJSON)
	}
	r := &Request{n: 1, temperature: 1}
	root := int32(0)
	if b := t.member(root, "stream"); b >= 0 {
		r.stream = t.nodes[b].kind == jTrue
	}
	if so := t.member(root, "stream_options"); so >= 0 {
		if iu := t.member(so, "include_usage"); iu >= 0 {
			r.includeUsage = t.nodes[iu].kind == jTrue
		}
	}
	if v := t.member(root, "n"); v >= 0 {
		if f, ok := t.number(v); ok {
			r.n = int(f)
		} else if t.nodes[v].kind != jNull {
			r.reason = ReasonUnsupportedShape
		}
	}
	if v := t.member(root, "temperature"); v >= 0 {
		if f, ok := t.number(v); ok {
			r.temperature = f
		} else if t.nodes[v].kind != jNull {
			r.reason = ReasonUnsupportedShape
		}
	}
	msgs := t.member(root, "messages")
	switch {
	case r.reason != "":
	case msgs < 0 || t.nodes[msgs].kind != jArr || t.nodes[msgs].first < 0:
		r.reason = ReasonUnsupportedShape
	case r.n > 1:
		r.reason = ReasonMultipleChoices
	case r.temperature > maxTemp:
		r.reason = ReasonTemperature
	}
	sc.w = canonWriter{t: t, scratch: sc.w.scratch[:0], folded: sc.w.folded[:0], order: sc.w.order[:0]}
	sc.buf = r.derive(&sc.w, tenant, alias, msgs, sc.buf)
	return r, nil
}

func appendLenPrefixed(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// derive computes the partition and exact keys. The hashed input is framed
// with length prefixes and NUL separators (canonical JSON never contains a
// raw NUL), so no two distinct requests share an input.
func (r *Request) derive(w *canonWriter, tenant, alias string, msgs int32, buf []byte) []byte {
	t := w.t
	if need := 256 + len(t.nodes)*8 + t.size; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	buf = append(buf[:0], keyVersion...)
	buf = append(buf, 0)
	buf = appendLenPrefixed(buf, tenant)
	buf = appendLenPrefixed(buf, alias)

	// Parameters: every top-level member except those outside the key,
	// written as one canonical object (sorted keys).
	params := jnode{kind: jObj, first: -1, next: -1}
	t.nodes = append(t.nodes, params)
	paramsIdx := int32(len(t.nodes) - 1)
	// Build a linked list over the kept members without disturbing the
	// original links: copy nodes.
	prev := int32(-1)
	for c := t.nodes[0].first; c >= 0; c = t.nodes[c].next {
		if !t.nodes[c].keyEsc && fieldOutsideKey(t.nodes[c].key) {
			continue
		}
		cp := t.nodes[c]
		cp.next = -1
		t.nodes = append(t.nodes, cp)
		ni := int32(len(t.nodes) - 1)
		if prev < 0 {
			t.nodes[paramsIdx].first = ni
		} else {
			t.nodes[prev].next = ni
		}
		prev = ni
	}
	buf = w.write(buf, paramsIdx, false)
	buf = append(buf, 0)

	// Messages: system/developer messages first (the "system prompt"), then
	// the earlier turns, then the last message goes into the exact key only.
	last := int32(-1)
	if msgs >= 0 && t.nodes[msgs].kind == jArr {
		for c := t.nodes[msgs].first; c >= 0; c = t.nodes[c].next {
			last = c
		}
		for c := t.nodes[msgs].first; c >= 0; c = t.nodes[c].next {
			if c != last && isSystemMessage(t, c) {
				buf = w.write(buf, c, true)
				buf = append(buf, 0)
			}
		}
		buf = append(buf, 0)
		for c := t.nodes[msgs].first; c >= 0; c = t.nodes[c].next {
			if c != last && !isSystemMessage(t, c) {
				buf = w.write(buf, c, true)
				buf = append(buf, 0)
			}
		}
	}
	r.partition = sha256.Sum256(buf)

	buf = append(buf[:0], r.partition[:]...)
	if last >= 0 {
		buf = w.write(buf, last, true)
		r.prompt = userText(t, last)
	}
	r.exact = sha256.Sum256(buf)
	return buf
}

func isSystemMessage(t *jtree, msg int32) bool {
	role := t.member(msg, "role")
	return t.textIs(role, "system") || t.textIs(role, "developer")
}

// userText returns the whitespace-folded text of a user message whose
// content is a string or a list of text parts, and "" otherwise.
func userText(t *jtree, msg int32) string {
	if !t.textIs(t.member(msg, "role"), "user") {
		return ""
	}
	content := t.member(msg, "content")
	if content < 0 {
		return ""
	}
	switch t.nodes[content].kind {
	case jStr:
		s, _ := t.text(content)
		return string(appendFolded(nil, []byte(s)))
	case jArr:
		var b strings.Builder
		for c := t.nodes[content].first; c >= 0; c = t.nodes[c].next {
			if !t.textIs(t.member(c, "type"), "text") {
				return ""
			}
			s, ok := t.text(t.member(c, "text"))
			if !ok {
				return ""
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(s)
		}
		return string(appendFolded(nil, []byte(b.String())))
	}
	return ""
}

// Cacheable reports whether the response to this request may be looked up
// and stored, and if not, why.
func (r *Request) Cacheable() (ok bool, reason string) {
	return r.reason == "", r.reason
}

// Bypass marks the request as not cacheable for the given reason (for example
// "no_store", "guardrail_modified", "upstream_error", "stream_cut"). Store then
// skips it and counts the reason.
func (r *Request) Bypass(reason string) {
	if reason == "" {
		reason = "bypass"
	}
	r.reason = reason
}

// Stream reports whether the client asked for a streamed (SSE) response.
func (r *Request) Stream() bool { return r.stream }

// IncludeUsage reports whether stream_options.include_usage was set.
func (r *Request) IncludeUsage() bool { return r.includeUsage }

// Prompt returns the text used for semantic lookup (the last user turn,
// whitespace folded), or "" when the request has none.
func (r *Request) Prompt() string { return r.prompt }

// Key returns the exact-cache key as hex (stable across replicas).
func (r *Request) Key() string { return hex.EncodeToString(r.exact[:]) }

// Partition returns the semantic partition key as hex.
func (r *Request) Partition() string { return hex.EncodeToString(r.partition[:]) }

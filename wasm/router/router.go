package router

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tollgate-dev/tollgate/wasm/internal/jsonvalue"
)

// Headers set by the router (ARCHITECTURE.md header contract).
const (
	HeaderTenant = "x-tollgate-tenant"
	HeaderTier   = "x-tollgate-tier"
	HeaderKeyID  = "x-tollgate-key-id"
	HeaderRoute  = "x-tollgate-route"
	// HeaderModel is the one client-sent x-tollgate-* header that is read
	// (the explicit model choice) before it is stripped like the others.
	HeaderModel = "x-tollgate-model"
	// HeaderPrefix marks headers that only Tollgate may set.
	HeaderPrefix = "x-tollgate-"
)

// Outcome names a routing decision; it is the suffix of the decision metric.
type Outcome string

// Outcomes, one per request.
const (
	OutcomeAllowed         Outcome = "allowed"
	OutcomeAnonymous       Outcome = "anonymous"
	OutcomeMissingKey      Outcome = "missing_key"
	OutcomeInvalidKey      Outcome = "invalid_key"
	OutcomeDeniedTenant    Outcome = "denied_tenant"
	OutcomeDeniedPath      Outcome = "denied_path"
	OutcomeDeniedMethod    Outcome = "denied_method"
	OutcomeUnknownPath     Outcome = "unknown_path"
	OutcomeModelNotAllowed Outcome = "model_not_allowed"
)

// Outcomes lists every Outcome, for metric definition.
var Outcomes = []Outcome{
	OutcomeAllowed, OutcomeAnonymous, OutcomeMissingKey, OutcomeInvalidKey, OutcomeDeniedTenant,
	OutcomeDeniedPath, OutcomeDeniedMethod, OutcomeUnknownPath, OutcomeModelNotAllowed,
}

// Header is one request header.
type Header struct {
	Name  string
	Value string
}

// Request is what the router sees of a request.
type Request struct {
	// Headers as Envoy holds them: {name, value} pairs, lower-case names,
	// pseudo-headers included.
	Headers [][2]string
	// RequestID is consulted only for a request-id canary split when the
	// x-request-id header is absent (the filter reads the request.id
	// property); nil means unknown.
	RequestID func() string
}

// Decision is what the filter must do with a request.
type Decision struct {
	Outcome Outcome
	// Remove lists client-sent x-tollgate-* header names, each once.
	Remove []string
	// Set lists headers to set (replacing any value) when Reply is nil.
	Set []Header
	// Reply, when non-nil, is a local reply that ends the request.
	Reply *Reply
	// Canary is true when a canary split sent the request to the canary alias.
	Canary bool
	// reply is the storage Reply points to and msg the bytes of a message
	// that echoes client input, so a reused Decision makes local replies
	// without allocating.
	reply Reply
	msg   []byte
}

// Reply is an OpenAI-shaped local reply.
type Reply struct {
	Status  uint32
	Type    string
	Code    string
	Message string
}

// Body returns {"error":{"message":…,"type":…,"code":…}}.
func (r *Reply) Body() []byte {
	return r.AppendBody(make([]byte, 0, 64+len(r.Message)))
}

// AppendBody appends the Body to b (a caller reusing b does not allocate).
func (r *Reply) AppendBody(b []byte) []byte {
	b = append(b, `{"error":{"message":`...)
	b = jsonvalue.AppendString(b, r.Message)
	b = append(b, `,"type":`...)
	b = jsonvalue.AppendString(b, r.Type)
	b = append(b, `,"code":`...)
	b = jsonvalue.AppendString(b, r.Code)
	return append(b, "}}"...)
}

// Details is the Envoy response-code-details string for the reply.
func (d *Decision) Details() string { return "tollgate_router_" + string(d.Outcome) }

// Router makes routing decisions from a validated Config. It is immutable and
// safe for concurrent use.
type Router struct {
	// keys is sorted by sum: a binary search on 8-byte prefixes is cheaper
	// than hashing a [32]byte map key in wasm.
	keys        []keyEntry
	anonymous   *identity
	paths       []string
	denyTenants []string
	denyPaths   []string
	denyMethods []string
	canaries    []Canary
}

type keyEntry struct {
	prefix uint64
	sum    [32]byte
	id     string
	*identity
}

// identity is a tenant with its tier resolved at configuration time.
type identity struct {
	Identity
	tier Tier
}

// New validates cfg and builds a Router.
func New(cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Router{
		keys:        make([]keyEntry, 0, len(cfg.Keys)),
		paths:       cfg.Paths,
		denyTenants: cfg.Deny.Tenants,
		denyPaths:   cfg.Deny.Paths,
		denyMethods: cfg.Deny.Methods,
		canaries:    cfg.Canaries,
	}
	if a := cfg.Anonymous; a != nil {
		r.anonymous = &identity{Identity: *a, tier: cfg.Tiers[a.Tier]}
	}
	if len(r.paths) == 0 {
		r.paths = DefaultPaths
	}
	for _, k := range cfg.Keys {
		sum := decodeHex32(k.SHA256)
		r.keys = append(r.keys, keyEntry{
			prefix: binary.BigEndian.Uint64(sum[:]), sum: sum, id: k.KeyID,
			identity: &identity{Identity: k.Identity, tier: cfg.Tiers[k.Tier]},
		})
	}
	slices.SortFunc(r.keys, func(a, b keyEntry) int { return bytes.Compare(a.sum[:], b.sum[:]) })
	return r, nil
}

// Decide makes the routing decision for one request.
func (r *Router) Decide(req Request) Decision {
	var d Decision
	r.DecideInto(req, &d)
	return d
}

// DecideInto is Decide reusing d's storage: a caller that keeps one Decision
// per VM makes decisions, local replies included, without allocating
// (allocation and GC are the dominant costs inside wasm). d.Reply, and the
// message of a reply that echoes client input, are valid until d is reused.
func (r *Router) DecideInto(req Request, d *Decision) {
	*d = Decision{Remove: d.Remove[:0], Set: d.Set[:0], msg: d.msg[:0]}
	var in fields
	in.scan(req.Headers, d)

	// Identity.
	id, keyID, ok := r.identify(&in, d)
	if !ok {
		return
	}

	// Access.
	if !r.access(id, &in, d) {
		return
	}

	// Model routing.
	route := in.model
	if route == "" {
		route = id.tier.DefaultModel
	} else if len(id.tier.AllowedModels) > 0 && !slices.Contains(id.tier.AllowedModels, route) {
		d.modelNotAllowed(route)
		return
	}
	if c := r.canary(route); c != nil {
		hashKey := id.Tenant
		if c.HashOn == HashOnRequestID {
			if in.requestID == "" && req.RequestID != nil {
				in.requestID = req.RequestID()
			}
			if in.requestID != "" {
				hashKey = in.requestID
			}
		}
		route = c.Stable
		if Bucket(c.Alias, hashKey) < uint32(c.Weight) {
			route = c.Canary
			d.Canary = true
		}
	}

	d.Set = append(d.Set, Header{HeaderTenant, id.Tenant}, Header{HeaderTier, id.Tier})
	if keyID != "" {
		d.Set = append(d.Set, Header{HeaderKeyID, keyID})
	}
	if route != "" {
		d.Set = append(d.Set, Header{HeaderRoute, route})
	}
}

// fields are the request headers the router reads. DecideInto is split into
// small functions: in wasm one large function with many live strings spills
// far more than the calls cost.
type fields struct {
	method, path, auth, apiKey, model, requestID string
}

// scan reads the request headers into f and lists client-sent x-tollgate-*
// names in d.Remove.
func (f *fields) scan(headers [][2]string, d *Decision) {
	for i := range headers {
		// Envoy's header maps hold lower-case names; only the x-tollgate-
		// prefix is also matched case-insensitively, as it guards trust.
		name, value := headers[i][0], headers[i][1]
		if len(name) < len(":path") {
			continue
		}
		switch name[0] {
		case ':':
			switch name {
			case ":method":
				f.method = value
			case ":path":
				f.path = value
			}
		case 'a':
			if name == "authorization" {
				f.auth = value
			}
		case 'x', 'X':
			switch {
			case name == "x-api-key":
				f.apiKey = value
			case name == "x-request-id":
				f.requestID = value
			case len(name) >= len(HeaderPrefix) && equalFoldLower(name[:len(HeaderPrefix)], HeaderPrefix):
				if len(name) == len(HeaderModel) && equalFoldLower(name, HeaderModel) {
					f.model = trimSpace(value)
				}
				if !slices.Contains(d.Remove, name) {
					d.Remove = append(d.Remove, name)
				}
			}
		}
	}
}

// identify resolves the caller; ok is false when d now holds a 401.
func (r *Router) identify(f *fields, d *Decision) (id *identity, keyID string, ok bool) {
	key := bearerToken(f.auth)
	if key == "" {
		key = trimSpace(f.apiKey)
	}
	switch {
	case key != "":
		e := r.lookupKey(sha256Sum(key))
		if e == nil {
			d.setReply(OutcomeInvalidKey, 401, "invalid_request_error", "invalid_api_key",
				"Incorrect API key provided.")
			return nil, "", false
		}
		d.Outcome = OutcomeAllowed
		return e.identity, e.id, true
	case r.anonymous != nil:
		d.Outcome = OutcomeAnonymous
		return r.anonymous, "", true
	default:
		d.setReply(OutcomeMissingKey, 401, "invalid_request_error", "missing_api_key",
			"You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key'.")
		return nil, "", false
	}
}

// access applies the deny lists and the known paths (f.path loses its query);
// false means d now holds a 403 or 404.
func (r *Router) access(id *identity, f *fields, d *Decision) bool {
	if slices.Contains(r.denyTenants, id.Tenant) {
		d.setReply(OutcomeDeniedTenant, 403, "permission_error", "tenant_denied",
			"Access for this tenant is disabled.")
		return false
	}
	if slices.Contains(r.denyMethods, f.method) {
		m := appendTruncated(append(d.msg[:0], "Method "...), f.method)
		d.setReplyMsg(OutcomeDeniedMethod, 403, "permission_error", "method_denied",
			append(m, " is not allowed."...))
		return false
	}
	f.path = stripQuery(f.path)
	if slices.Contains(r.denyPaths, f.path) {
		m := appendTruncated(append(d.msg[:0], "Access to "...), f.path)
		d.setReplyMsg(OutcomeDeniedPath, 403, "permission_error", "path_denied",
			append(m, " is not allowed."...))
		return false
	}
	if !slices.Contains(r.paths, f.path) {
		m := appendTruncated(append(d.msg[:0], "Unknown request URL: "...), f.method)
		m = appendTruncated(append(m, ' '), f.path)
		d.setReplyMsg(OutcomeUnknownPath, 404, "invalid_request_error", "unknown_url", append(m, '.'))
		return false
	}
	return true
}

func (d *Decision) modelNotAllowed(route string) {
	m := appendTruncated(append(d.msg[:0], "The model '"...), route)
	d.setReplyMsg(OutcomeModelNotAllowed, 403, "invalid_request_error", "model_not_allowed",
		append(m, "' is not allowed for this API key's tier."...))
}

func (r *Router) lookupKey(sum [32]byte) *keyEntry {
	prefix := binary.BigEndian.Uint64(sum[:])
	// The first entry with this prefix (a hand-written search: the generic
	// one with its comparison closure costs several times more in wasm).
	i, hi := 0, len(r.keys)
	for i < hi {
		m := int(uint(i+hi) >> 1)
		if r.keys[m].prefix < prefix {
			i = m + 1
		} else {
			hi = m
		}
	}
	for ; i < len(r.keys) && r.keys[i].prefix == prefix; i++ {
		if r.keys[i].sum == sum {
			return &r.keys[i]
		}
	}
	return nil
}

func (r *Router) canary(alias string) *Canary {
	for i := range r.canaries {
		if r.canaries[i].Alias == alias {
			return &r.canaries[i]
		}
	}
	return nil
}

// setReplyMsg is setReply with a message built in d.msg's storage: Message
// aliases it until d is reused (DecideInto).
func (d *Decision) setReplyMsg(o Outcome, status uint32, typ, code string, msg []byte) {
	d.msg = msg
	d.setReply(o, status, typ, code, unsafe.String(unsafe.SliceData(msg), len(msg)))
}

func (d *Decision) setReply(o Outcome, status uint32, typ, code, msg string) {
	d.Outcome = o
	d.reply = Reply{Status: status, Type: typ, Code: code, Message: msg}
	d.Reply = &d.reply
}

// Bucket maps (alias, key) to 0..99 with 32-bit FNV-1a: stable across
// processes, architectures and restarts, so a request id (or tenant) always
// lands on the same side of a canary split.
func Bucket(alias, key string) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(alias); i++ {
		h = (h ^ uint32(alias[i])) * prime
	}
	h = (h ^ 0) * prime
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * prime
	}
	return h % 100
}

// decodeHex32 decodes a validated 64-character lower-case hex string.
func decodeHex32(s string) [32]byte {
	var out [32]byte
	nibble := func(c byte) byte {
		if c >= 'a' {
			return c - 'a' + 10
		}
		return c - '0'
	}
	for i := range out {
		out[i] = nibble(s[2*i])<<4 | nibble(s[2*i+1])
	}
	return out
}

func bearerToken(auth string) string {
	auth = trimSpace(auth)
	const scheme = "bearer "
	if len(auth) <= len(scheme) || !equalFoldLower(auth[:len(scheme)], scheme) {
		return ""
	}
	return trimSpace(auth[len(scheme):])
}

// The helpers below are the strings functions the router used to call,
// specialised to its inputs: in wasm every call and every rune decode is
// expensive, and they run on each request.

// trimSpace is strings.TrimSpace with a fast path: a string that starts and
// ends with a printable ASCII byte has no space to trim (every Unicode space
// starts with a control, space or non-ASCII byte).
func trimSpace(s string) string {
	if s == "" || (isPrintASCII(s[0]) && isPrintASCII(s[len(s)-1])) {
		return s
	}
	return strings.TrimSpace(s)
}

func isPrintASCII(c byte) bool { return c > ' ' && c < utf8.RuneSelf }

// equalFoldLower reports whether s equals lower, a lower-case ASCII string,
// ignoring ASCII case. For the targets used here (no 'k' or 's', the only
// ASCII letters with non-ASCII case folds: U+212A, U+017F) it is exactly
// strings.EqualFold.
func equalFoldLower(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// stripQuery cuts path at the first '?' or '#' (strings.IndexAny for two
// ASCII bytes).
func stripQuery(path string) string {
	for i := 0; i < len(path); i++ {
		if path[i] == '?' || path[i] == '#' {
			return path[:i]
		}
	}
	return path
}

// appendTruncated appends s to b, bounded: client input echoed in error
// messages.
func appendTruncated(b []byte, s string) []byte {
	const maxEcho = 128
	if len(s) > maxEcho {
		return append(append(b, s[:maxEcho]...), "..."...)
	}
	return append(b, s...)
}

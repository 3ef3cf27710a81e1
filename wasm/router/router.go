package router

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"strings"

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
	b := make([]byte, 0, 64+len(r.Message))
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

// DecideInto is Decide reusing d's Remove and Set slices: a caller that keeps
// one Decision per VM makes decisions without allocating (allocation and GC
// are the dominant costs inside wasm).
func (r *Router) DecideInto(req Request, d *Decision) {
	*d = Decision{Remove: d.Remove[:0], Set: d.Set[:0]}
	var method, path, auth, apiKey, model, requestID string
	for _, h := range req.Headers {
		// Envoy's header maps hold lower-case names; only the x-tollgate-
		// prefix is also matched case-insensitively, as it guards trust.
		name, value := h[0], h[1]
		if len(name) < len(":path") {
			continue
		}
		switch name[0] {
		case ':':
			switch name {
			case ":method":
				method = value
			case ":path":
				path = value
			}
		case 'a':
			if name == "authorization" {
				auth = value
			}
		case 'x', 'X':
			switch {
			case name == "x-api-key":
				apiKey = value
			case name == "x-request-id":
				requestID = value
			case len(name) >= len(HeaderPrefix) && (name[:len(HeaderPrefix)] == HeaderPrefix ||
				strings.EqualFold(name[:len(HeaderPrefix)], HeaderPrefix)):
				if strings.EqualFold(name, HeaderModel) {
					model = strings.TrimSpace(value)
				}
				if !slices.Contains(d.Remove, name) {
					d.Remove = append(d.Remove, name)
				}
			}
		}
	}

	// Identity.
	key := bearerToken(auth)
	if key == "" {
		key = strings.TrimSpace(apiKey)
	}
	var id *identity
	var keyID string
	switch {
	case key != "":
		e := r.lookupKey(sha256Sum(key))
		if e == nil {
			d.reply(OutcomeInvalidKey, 401, "invalid_request_error", "invalid_api_key",
				"Incorrect API key provided.")
			return
		}
		id, keyID = e.identity, e.id
		d.Outcome = OutcomeAllowed
	case r.anonymous != nil:
		id = r.anonymous
		d.Outcome = OutcomeAnonymous
	default:
		d.reply(OutcomeMissingKey, 401, "invalid_request_error", "missing_api_key",
			"You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key'.")
		return
	}

	// Access.
	if slices.Contains(r.denyTenants, id.Tenant) {
		d.reply(OutcomeDeniedTenant, 403, "permission_error", "tenant_denied",
			"Access for this tenant is disabled.")
		return
	}
	if slices.Contains(r.denyMethods, method) {
		d.reply(OutcomeDeniedMethod, 403, "permission_error", "method_denied",
			"Method "+truncate(method)+" is not allowed.")
		return
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	if slices.Contains(r.denyPaths, path) {
		d.reply(OutcomeDeniedPath, 403, "permission_error", "path_denied",
			"Access to "+truncate(path)+" is not allowed.")
		return
	}
	if !slices.Contains(r.paths, path) {
		d.reply(OutcomeUnknownPath, 404, "invalid_request_error", "unknown_url",
			"Unknown request URL: "+truncate(method)+" "+truncate(path)+".")
		return
	}

	// Model routing.
	tier := id.tier
	route := model
	if route == "" {
		route = tier.DefaultModel
	} else if len(tier.AllowedModels) > 0 && !slices.Contains(tier.AllowedModels, route) {
		d.reply(OutcomeModelNotAllowed, 403, "invalid_request_error", "model_not_allowed",
			"The model '"+truncate(route)+"' is not allowed for this API key's tier.")
		return
	}
	if c := r.canary(route); c != nil {
		hashKey := id.Tenant
		if c.HashOn == HashOnRequestID {
			if requestID == "" && req.RequestID != nil {
				requestID = req.RequestID()
			}
			if requestID != "" {
				hashKey = requestID
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

func (r *Router) lookupKey(sum [32]byte) *keyEntry {
	prefix := binary.BigEndian.Uint64(sum[:])
	i, _ := slices.BinarySearchFunc(r.keys, prefix, func(e keyEntry, p uint64) int { return cmp.Compare(e.prefix, p) })
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

func (d *Decision) reply(o Outcome, status uint32, typ, code, msg string) {
	d.Outcome = o
	d.Reply = &Reply{Status: status, Type: typ, Code: code, Message: msg}
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
	auth = strings.TrimSpace(auth)
	const scheme = "bearer "
	if len(auth) <= len(scheme) || !strings.EqualFold(auth[:len(scheme)], scheme) {
		return ""
	}
	return strings.TrimSpace(auth[len(scheme):])
}

// truncate bounds client input echoed in error messages.
func truncate(s string) string {
	const maxEcho = 128
	if len(s) > maxEcho {
		return s[:maxEcho] + "..."
	}
	return s
}

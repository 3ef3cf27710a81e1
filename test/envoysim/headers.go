package envoysim

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// headerField is one entry of an Envoy header map: a lowercased key and the
// raw bytes of its value.
type headerField struct {
	key   string
	value string
}

// headerMap is an ordered multi-map like Envoy's Http::HeaderMap. Keys are
// stored lowercased; pseudo-headers (":method", ":status", ...) are entries
// like any other.
type headerMap struct {
	fields []headerField
}

// get returns the first value of key.
func (h *headerMap) get(key string) (string, bool) {
	for _, f := range h.fields {
		if f.key == key {
			return f.value, true
		}
	}
	return "", false
}

// getJoined returns all values of key joined with "," as Envoy's
// HeaderUtility::getAllOfHeaderAsString does (used by CEL header lookups).
func (h *headerMap) getJoined(key string) (string, bool) {
	var vals []string
	for _, f := range h.fields {
		if f.key == key {
			vals = append(vals, f.value)
		}
	}
	if len(vals) == 0 {
		return "", false
	}
	return strings.Join(vals, ","), true
}

func (h *headerMap) has(key string) bool {
	_, ok := h.get(key)
	return ok
}

// set replaces every value of key with one value, keeping the position of
// the first occurrence (Envoy's setCopy).
func (h *headerMap) set(key, value string) {
	out := h.fields[:0]
	done := false
	for _, f := range h.fields {
		if f.key != key {
			out = append(out, f)
			continue
		}
		if !done {
			out = append(out, headerField{key: key, value: value})
			done = true
		}
	}
	h.fields = out
	if !done {
		h.fields = append(h.fields, headerField{key: key, value: value})
	}
}

// add appends a value (Envoy's addCopy).
func (h *headerMap) add(key, value string) {
	h.fields = append(h.fields, headerField{key: key, value: value})
}

// remove deletes every value of key.
func (h *headerMap) remove(key string) {
	out := h.fields[:0]
	for _, f := range h.fields {
		if f.key != key {
			out = append(out, f)
		}
	}
	h.fields = out
}

func (h *headerMap) clone() *headerMap {
	c := &headerMap{fields: make([]headerField, len(h.fields))}
	copy(c.fields, h.fields)
	return c
}

// proto renders the map as Envoy sends it to the server: every entry in
// order, the value in raw_value (runtime send_header_raw_value, default on).
func (h *headerMap) proto() *corev3.HeaderMap {
	out := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, 0, len(h.fields))}
	for _, f := range h.fields {
		out.Headers = append(out.Headers, &corev3.HeaderValue{Key: f.key, RawValue: []byte(f.value)})
	}
	return out
}

// httpHeader converts the regular (non-pseudo) entries to an http.Header.
func (h *headerMap) httpHeader() http.Header {
	out := make(http.Header, len(h.fields))
	for _, f := range h.fields {
		if strings.HasPrefix(f.key, ":") {
			continue
		}
		out[http.CanonicalHeaderKey(f.key)] = append(out[http.CanonicalHeaderKey(f.key)], f.value)
	}
	return out
}

// appendHTTPHeader appends the entries of hdr with lowercased keys, sorted by
// key so that maps built from Go's unordered http.Header are deterministic.
func (h *headerMap) appendHTTPHeader(hdr http.Header) {
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		for _, v := range hdr[k] {
			h.add(lk, v)
		}
	}
}

// isTokenChar reports whether c may appear in an HTTP header name (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHeaderName mirrors Envoy's HeaderUtility::headerNameIsValid: a token,
// optionally preceded by ':' for pseudo-headers.
func validHeaderName(name string) bool {
	n := strings.TrimPrefix(name, ":")
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if !isTokenChar(n[i]) {
			return false
		}
	}
	return true
}

// validHeaderValue mirrors Envoy's HeaderUtility::headerValueIsValid: no NUL,
// CR or LF.
func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\x00\r\n")
}

type checkOp int

const (
	opSet checkOp = iota
	opAppend
	opRemove
)

type checkResult int

const (
	checkOK checkResult = iota
	checkIgnore
	checkFail
)

// mutationChecker models envoy.config.common.mutation_rules.v3.HeaderMutationRules
// as evaluated by Envoy's Filters::Common::MutationRules::Checker.
type mutationChecker struct {
	allowAllRouting bool
	allowEnvoy      bool
	disallowSystem  bool
	disallowAll     bool
	disallowIsError bool
	allowExpr       *regexp.Regexp
	disallowExpr    *regexp.Regexp
}

func newMutationChecker(rules *mutationrulesv3.HeaderMutationRules) (*mutationChecker, error) {
	c := &mutationChecker{
		allowAllRouting: rules.GetAllowAllRouting().GetValue(),
		allowEnvoy:      rules.GetAllowEnvoy().GetValue(),
		disallowSystem:  rules.GetDisallowSystem().GetValue(),
		disallowAll:     rules.GetDisallowAll().GetValue(),
		disallowIsError: rules.GetDisallowIsError().GetValue(),
	}
	var errs []error
	if re := rules.GetAllowExpression().GetRegex(); re != "" {
		r, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			errs = append(errs, fmt.Errorf("mutation_rules.allow_expression: %w", err))
		}
		c.allowExpr = r
	}
	if re := rules.GetDisallowExpression().GetRegex(); re != "" {
		r, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			errs = append(errs, fmt.Errorf("mutation_rules.disallow_expression: %w", err))
		}
		c.disallowExpr = r
	}
	return c, errors.Join(errs...)
}

func isRoutingHeader(name string) bool {
	switch name {
	case "host", ":authority", ":scheme", ":method":
		return true
	}
	return false
}

func isSystemHeader(name string) bool {
	return strings.HasPrefix(name, ":") || name == "host"
}

func (c *mutationChecker) allowed(op checkOp, name string) bool {
	if c.disallowAll {
		return false
	}
	// Pseudo-headers and host can never be removed.
	if op == opRemove && isSystemHeader(name) {
		return false
	}
	if c.allowExpr != nil && c.allowExpr.MatchString(name) {
		return true
	}
	if c.disallowExpr != nil && c.disallowExpr.MatchString(name) {
		return false
	}
	if isSystemHeader(name) {
		if c.disallowSystem {
			return false
		}
		if isRoutingHeader(name) {
			return c.allowAllRouting
		}
	}
	if strings.HasPrefix(name, "x-envoy-") {
		return c.allowEnvoy
	}
	return true
}

func (c *mutationChecker) check(op checkOp, name, value string) checkResult {
	if !c.allowed(op, name) {
		if c.disallowIsError {
			return checkFail
		}
		return checkIgnore
	}
	if op != opRemove && name == ":status" {
		// An invalid :status is ignored while the other mutations apply.
		code, err := strconv.Atoi(value)
		if err != nil || code < 200 || code > 999 {
			return checkIgnore
		}
	}
	return checkOK
}

// mutationError is a header or body mutation Envoy rejects with a local
// reply (500) regardless of failure_mode_allow.
type mutationError struct {
	msg string
}

func (e *mutationError) Error() string { return e.msg }

// mutationParams are the per-call knobs of applyHeaderMutation.
type mutationParams struct {
	checker          *mutationChecker
	maxHeadersCount  int
	replacingMessage bool // CONTINUE_AND_REPLACE: ":method" may change
	removeCL         bool // content-length is being removed for this mode; sets of it are skipped
	rejected         func()
}

// applyHeaderMutation applies m to h the way Envoy's
// MutationUtils::applyHeaderMutations does: count limits first, removals,
// then sets (append defaults to false = overwrite; value and raw_value both
// set is an error; invalid names or values are errors), then the result
// size check. Disallowed mutations are ignored and counted, or fail when
// disallow_is_error is set.
func applyHeaderMutation(m *extprocv3.HeaderMutation, h *headerMap, p mutationParams) error {
	if m == nil {
		return nil
	}
	if len(m.GetSetHeaders()) > p.maxHeadersCount || len(m.GetRemoveHeaders()) > p.maxHeadersCount {
		p.rejected()
		return &mutationError{msg: fmt.Sprintf("header mutation has %d set and %d remove operations, limit %d",
			len(m.GetSetHeaders()), len(m.GetRemoveHeaders()), p.maxHeadersCount)}
	}
	for _, name := range m.GetRemoveHeaders() {
		if !validHeaderName(name) {
			p.rejected()
			return &mutationError{msg: "invalid character in remove_headers mutation"}
		}
		lname := strings.ToLower(name)
		switch p.checker.check(opRemove, lname, "") {
		case checkOK:
			h.remove(lname)
		case checkIgnore:
			p.rejected()
		case checkFail:
			p.rejected()
			return &mutationError{msg: "invalid attempt to remove " + lname}
		}
	}
	for _, sh := range m.GetSetHeaders() {
		hv := sh.GetHeader()
		if hv == nil {
			continue
		}
		lname := strings.ToLower(hv.GetKey())
		if p.removeCL && lname == "content-length" {
			continue
		}
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			p.rejected()
			return &mutationError{msg: "only one of value or raw_value in the HeaderValue message should be set"}
		}
		value := string(hv.GetRawValue())
		if !validHeaderName(hv.GetKey()) || !validHeaderValue(value) {
			p.rejected()
			return &mutationError{msg: "invalid character in set_headers mutation"}
		}
		appendVal := sh.GetAppend().GetValue()
		op := opSet
		if appendVal && h.has(lname) {
			op = opAppend
		}
		res := p.checker.check(op, lname, value)
		if p.replacingMessage && lname == ":method" {
			res = checkOK
		}
		if res == checkOK && op == opAppend && isSystemHeader(lname) {
			// A pseudo-header holds one value; a second one (e.g. an appended
			// :status) is ignored.
			res = checkIgnore
		}
		switch res {
		case checkOK:
			if appendVal {
				h.add(lname, value)
			} else {
				h.set(lname, value)
			}
		case checkIgnore:
			p.rejected()
		case checkFail:
			p.rejected()
			return &mutationError{msg: "invalid attempt to modify " + lname}
		}
	}
	if len(h.fields) > p.maxHeadersCount {
		p.rejected()
		return &mutationError{msg: fmt.Sprintf("header mutation results in %d headers, limit %d", len(h.fields), p.maxHeadersCount)}
	}
	return nil
}

// pairs returns the entries in order as key/value pairs.
func (h *headerMap) pairs() [][2]string {
	out := make([][2]string, len(h.fields))
	for i, f := range h.fields {
		out[i] = [2]string{f.key, f.value}
	}
	return out
}

// headerMapFromPairs builds a header map from key/value pairs (keys
// lowercased).
func headerMapFromPairs(p [][2]string) *headerMap {
	h := &headerMap{fields: make([]headerField, 0, len(p))}
	for _, kv := range p {
		h.fields = append(h.fields, headerField{key: strings.ToLower(kv[0]), value: kv[1]})
	}
	return h
}

package envoysim

import (
	"net"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"
)

// attributeKey is the key under which Envoy puts evaluated attributes in
// ProcessingRequest.attributes.
const attributeKey = "envoy.filters.http.ext_proc"

// celMapString is what Envoy sends for an attribute whose CEL value is a map
// (request.headers, response.headers, ...). ExpressionManager::evaluateAttributes
// (source/extensions/filters/http/ext_proc/matching_utils.cc) converts bool,
// int64 and uint64 to Value kinds and everything else with
// Filters::Common::Expr::print (source/extensions/filters/common/expr/evaluator.cc),
// whose default branch is StrCat(CelValue::TypeName(type), " value"); cel-cpp's
// TypeName(kMap) is "CelMap".
const celMapString = "CelMap value"

// attrContext is what an attribute expression can see.
type attrContext struct {
	reqHeaders   *headerMap
	respHeaders  *headerMap // nil on the request path
	remoteAddr   string     // "ip:port"
	localAddr    string     // "ip:port"
	clusterName  string
	protocolName string // "HTTP/1.1"
	// hostMetadata is the filter_metadata of the upstream host chosen for
	// the current attempt (nil before the router picked one).
	hostMetadata map[string]*structpb.Struct
	// codeDetails is StreamInfo::responseCodeDetails ("" while unset).
	codeDetails string
}

// evalAttribute evaluates one attribute expression. ok is false when Envoy's
// evaluation would fail or yield an error value (the attribute is then left
// out of the Struct, as evaluateAttributes does).
func evalAttribute(expr string, c *attrContext) (*structpb.Value, bool) {
	expr = strings.TrimSpace(expr)
	// request.headers['name'] / response.headers["name"]: CEL map index.
	for _, prefix := range []string{"request.headers[", "response.headers["} {
		if !strings.HasPrefix(expr, prefix) || !strings.HasSuffix(expr, "]") {
			continue
		}
		name, ok := unquoteCEL(expr[len(prefix) : len(expr)-1])
		if !ok || !validHeaderName(name) {
			return nil, false
		}
		hm := c.reqHeaders
		if prefix == "response.headers[" {
			hm = c.respHeaders
		}
		if hm == nil {
			return nil, false
		}
		v, found := hm.getJoined(strings.ToLower(name))
		if !found {
			return nil, false
		}
		return structpb.NewStringValue(v), true
	}
	str := func(s string, ok bool) (*structpb.Value, bool) {
		if !ok {
			return nil, false
		}
		return structpb.NewStringValue(s), true
	}
	num := func(n int64) (*structpb.Value, bool) { return structpb.NewNumberValue(float64(n)), true }
	reqHeader := func(k string) (string, bool) {
		if c.reqHeaders == nil {
			return "", false
		}
		return c.reqHeaders.get(k)
	}
	if rest, ok := strings.CutPrefix(expr, "xds.upstream_host_metadata.filter_metadata["); ok {
		return hostMetadataAttribute(rest, c)
	}
	switch expr {
	case "request.path":
		return str(reqHeader(":path"))
	case "request.url_path":
		p, ok := reqHeader(":path")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return str(p, ok)
	case "request.query":
		p, ok := reqHeader(":path")
		if !ok {
			return nil, false
		}
		q := ""
		if i := strings.IndexByte(p, '?'); i >= 0 {
			q = p[i+1:]
		}
		return structpb.NewStringValue(q), true
	case "request.method":
		return str(reqHeader(":method"))
	case "request.host":
		return str(reqHeader(":authority"))
	case "request.scheme":
		return str(reqHeader(":scheme"))
	case "request.id":
		return str(reqHeader("x-request-id"))
	case "request.useragent":
		return str(reqHeader("user-agent"))
	case "request.referer":
		return str(reqHeader("referer"))
	case "request.protocol":
		return str(c.protocolName, c.protocolName != "")
	case "request.headers":
		if c.reqHeaders == nil {
			return nil, false
		}
		return structpb.NewStringValue(celMapString), true
	case "response.headers":
		if c.respHeaders == nil {
			return nil, false
		}
		return structpb.NewStringValue(celMapString), true
	case "response.code":
		if c.respHeaders == nil {
			return nil, false
		}
		s, ok := c.respHeaders.get(":status")
		code, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil {
			return nil, false
		}
		return num(code)
	case "response.code_details":
		// context.cc ResponseWrapper (CodeDetails: info_.responseCodeDetails(),
		// no value while unset).
		return str(c.codeDetails, c.respHeaders != nil && c.codeDetails != "")
	case "source.address":
		return str(c.remoteAddr, c.remoteAddr != "")
	case "source.port":
		return portOf(c.remoteAddr)
	case "destination.address":
		return str(c.localAddr, c.localAddr != "")
	case "destination.port":
		return portOf(c.localAddr)
	case "xds.cluster_name":
		return str(c.clusterName, c.clusterName != "")
	}
	return nil, false
}

// hostMetadataAttribute evaluates the rest of
// xds.upstream_host_metadata.filter_metadata['ns']['key'] (after the first
// "["). Envoy evaluates xds.upstream_host_metadata from the stream's
// upstream info, which the router sets to the host of the current attempt
// (source/extensions/filters/common/expr/context.cc XDSLookupValues;
// source/common/router/upstream_request.cc UpstreamRequest::UpstreamRequest
// setUpstreamHost); without a host the attribute is an error and left out.
// Only a string leaf is modelled (matching_utils.cc converts it to a
// string_value); an index into a missing key is a CEL error (left out).
func hostMetadataAttribute(rest string, c *attrContext) (*structpb.Value, bool) {
	if c.hostMetadata == nil {
		return nil, false
	}
	ns, rest, ok := strings.Cut(rest, "][")
	if !ok || !strings.HasSuffix(rest, "]") {
		return nil, false
	}
	nsName, ok1 := unquoteCEL(ns)
	key, ok2 := unquoteCEL(rest[:len(rest)-1])
	if !ok1 || !ok2 {
		return nil, false
	}
	v, ok := c.hostMetadata[nsName].GetFields()[key]
	if !ok {
		return nil, false
	}
	if sv, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return structpb.NewStringValue(sv.StringValue), true
	}
	return nil, false
}

func portOf(addr string) (*structpb.Value, bool) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, false
	}
	n, err := strconv.ParseInt(p, 10, 64)
	if err != nil {
		return nil, false
	}
	return structpb.NewNumberValue(float64(n)), true
}

// unquoteCEL strips one level of CEL single or double quotes.
func unquoteCEL(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return "", false
	}
	q := s[0]
	if (q != '\'' && q != '"') || s[len(s)-1] != q {
		return "", false
	}
	inner := s[1 : len(s)-1]
	if strings.ContainsRune(inner, rune(q)) || strings.ContainsRune(inner, '\\') {
		return "", false
	}
	return inner, true
}

// evalAttributes builds the Struct Envoy sends under attributeKey: one field
// per expression that evaluates, keyed by the expression text.
func evalAttributes(exprs []string, c *attrContext) *structpb.Struct {
	out := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(exprs))}
	for _, e := range exprs {
		if v, ok := evalAttribute(e, c); ok {
			out.Fields[e] = v
		}
	}
	return out
}

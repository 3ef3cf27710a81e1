package extproc

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-dev/tollgate/pkg/contract"
)

// attrNamespace is where Envoy puts the attributes of a ProcessingRequest.
const attrNamespace = "envoy.filters.http.ext_proc"

// headerMap is a request's or response's headers, keys lowercased.
type headerMap map[string]string

func (h headerMap) get(k string) string { return h[k] }

// fromHeaderMap reads Envoy's HeaderMap (value or raw_value).
func fromHeaderMap(hm *corev3.HeaderMap, into headerMap) headerMap {
	if into == nil {
		into = make(headerMap, 16)
	}
	if hm == nil {
		return into
	}
	for _, h := range hm.GetHeaders() {
		v := h.GetValue()
		if len(h.GetRawValue()) > 0 {
			v = string(h.GetRawValue())
		}
		k := strings.ToLower(h.GetKey())
		if old, ok := into[k]; ok && old != "" {
			v = old + "," + v
		}
		into[k] = v
	}
	return into
}

// attributes returns the Struct Envoy sends for this filter's attributes.
func attributes(req *extprocv3.ProcessingRequest) *structpb.Struct {
	if a := req.GetAttributes(); a != nil {
		return a[attrNamespace]
	}
	return nil
}

// hostTarget reads the provider and model of the upstream host Envoy chose,
// from the attributes contract.HostAttribute names.
func hostTarget(attrs *structpb.Struct) (provider, model string) {
	if attrs == nil {
		return "", ""
	}
	f := attrs.GetFields()
	return valueString(f[contract.HostAttribute(contract.HostProvider)]), valueString(f[contract.HostAttribute(contract.HostModel)])
}

// valueString renders a string, number or list-of-strings Value.
func valueString(v *structpb.Value) string {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_ListValue:
		parts := make([]string, 0, len(k.ListValue.GetValues()))
		for _, e := range k.ListValue.GetValues() {
			parts = append(parts, valueString(e))
		}
		return strings.Join(parts, ",")
	case *structpb.Value_NumberValue, *structpb.Value_BoolValue:
		b, _ := v.MarshalJSON()
		return string(b)
	}
	return ""
}

// mutation accumulates header changes for one reply.
type mutation struct {
	set    []*corev3.HeaderValueOption
	remove []string
}

func (m *mutation) setHeader(k, v string) {
	m.set = append(m.set, &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, RawValue: []byte(v)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	})
}

func (m *mutation) removeHeader(k string) { m.remove = append(m.remove, k) }

// get returns the value a mutation sets for k.
func (m *mutation) get(k string) (string, bool) {
	for _, h := range m.set {
		if h.GetHeader().GetKey() == k {
			return string(h.GetHeader().GetRawValue()), true
		}
	}
	return "", false
}

func (m *mutation) empty() bool { return m == nil || len(m.set) == 0 && len(m.remove) == 0 }

func (m *mutation) proto() *extprocv3.HeaderMutation {
	if m.empty() {
		return nil
	}
	return &extprocv3.HeaderMutation{SetHeaders: m.set, RemoveHeaders: m.remove}
}

package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/config/preflight"
)

// envoyMessages builds an empty message for each Envoy kind.
var envoyMessages = map[Kind]func() proto.Message{
	KindEnvoyBootstrap:       func() proto.Message { return &bootstrapv3.Bootstrap{} },
	KindEnvoyExtProc:         func() proto.Message { return &extprocv3.ExternalProcessor{} },
	KindEnvoyExtensionConfig: func() proto.Message { return &corev3.TypedExtensionConfig{} },
	KindEnvoyHTTPFilter:      func() proto.Message { return &hcmv3.HttpFilter{} },
}

func validateEnvoy(k Kind, js []byte) error {
	if k == KindEnvoyHTTPFilterList {
		var doc struct {
			HTTPFilters []json.RawMessage `json:"http_filters"`
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return fmt.Errorf("http_filters: %w", err)
		}
		if len(doc.HTTPFilters) == 0 {
			return errors.New("http_filters: empty list")
		}
		var errs []error
		for i, f := range doc.HTTPFilters {
			if err := parseEnvoy(f, &hcmv3.HttpFilter{}, true); err != nil {
				errs = append(errs, fmt.Errorf("http_filters[%d]: %w", i, err))
			}
		}
		return errors.Join(errs...)
	}
	newMsg, ok := envoyMessages[k]
	if !ok {
		return fmt.Errorf("no validator for %s", k)
	}
	return parseEnvoy(js, newMsg(), true)
}

// parseEnvoy unmarshals JSON into m strictly (unknown fields and unknown Any
// types fail) and, when complete is true, runs ValidateAll on m and on every
// message packed in an Any inside it (ValidateAll does not look into Any).
func parseEnvoy(js []byte, m proto.Message, complete bool) error {
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, m); err != nil {
		return fmt.Errorf("%s: %w", proto.MessageName(m), err)
	}
	if !complete {
		return nil
	}
	return validateDeep(m)
}

// validator is implemented by every generated Envoy message.
type validator interface{ ValidateAll() error }

// validateDeep runs ValidateAll on m and on the contents of every Any in m.
func validateDeep(m proto.Message) error {
	var errs []error
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", proto.MessageName(m), err))
		}
	}
	walkMessages(m.ProtoReflect(), func(msg proto.Message) bool {
		switch x := msg.(type) {
		case *anypb.Any:
			inner, err := x.UnmarshalNew()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", x.GetTypeUrl(), err))
			} else if err := validateDeep(inner); err != nil {
				errs = append(errs, err)
			}
			return false // validateDeep walked inside
		case *corev3.ExtensionConfigSource:
			// ECDS type URLs are plain strings: check they name real types.
			for _, u := range x.GetTypeUrls() {
				if _, err := protoregistry.GlobalTypes.FindMessageByURL(u); err != nil {
					errs = append(errs, fmt.Errorf("config_discovery type_urls %q: %w", u, err))
				}
			}
		}
		return true
	})
	return errors.Join(errs...)
}

// walkMessages calls f for each message directly or indirectly inside m; f
// returns whether to descend into that message.
func walkMessages(m protoreflect.Message, f func(proto.Message) bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		visit := func(v protoreflect.Value) {
			msg := v.Message()
			if f(msg.Interface()) {
				walkMessages(msg, f)
			}
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := range l.Len() {
				visit(l.Get(i))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				visit(mv)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			visit(v)
		}
		return true
	})
}

// istioPatchTargets maps an EnvoyFilter applyTo to the Envoy message its
// patch value is.
var istioPatchTargets = map[string]func() proto.Message{
	"LISTENER":            func() proto.Message { return &listenerv3.Listener{} },
	"FILTER_CHAIN":        func() proto.Message { return &listenerv3.FilterChain{} },
	"NETWORK_FILTER":      func() proto.Message { return &listenerv3.Filter{} },
	"HTTP_FILTER":         func() proto.Message { return &hcmv3.HttpFilter{} },
	"ROUTE_CONFIGURATION": func() proto.Message { return &routev3.RouteConfiguration{} },
	"VIRTUAL_HOST":        func() proto.Message { return &routev3.VirtualHost{} },
	"HTTP_ROUTE":          func() proto.Message { return &routev3.Route{} },
	"CLUSTER":             func() proto.Message { return &clusterv3.Cluster{} },
	"EXTENSION_CONFIG":    func() proto.Message { return &corev3.TypedExtensionConfig{} },
	"BOOTSTRAP":           func() proto.Message { return &bootstrapv3.Bootstrap{} },
	"LISTENER_FILTER":     func() proto.Message { return &listenerv3.ListenerFilter{} },
}

// validateTollgate checks a tollgate.yaml whose first line is line
// offset+1 of the file: each problem is reported at its file line.
func validateTollgate(raw []byte, offset int) error {
	c, err := config.Parse("tollgate.yaml", raw)
	if err == nil {
		err = buildGuards(c)
	}
	var ps config.Problems
	if !errors.As(err, &ps) {
		if err != nil {
			return fmt.Errorf("tollgate.yaml: %w", err)
		}
		return nil
	}
	errs := make([]error, 0, len(ps))
	for _, p := range ps {
		msg := p.Msg
		if p.Path != "" {
			msg = p.Path + ": " + msg
		}
		if p.Line > 0 {
			errs = append(errs, fmt.Errorf("tollgate.yaml: %s (yaml line %d)", msg, p.Line+offset))
		} else {
			errs = append(errs, fmt.Errorf("tollgate.yaml: %s", msg))
		}
	}
	return errors.Join(errs...)
}

// buildGuards builds the guardrails the server would build, so an unknown
// detector or finding type is an error here too (the rest of what startup
// builds, which depends on the host, is `tollgate validate --config`'s).
func buildGuards(c *config.Config) error {
	var ps config.Problems
	for _, g := range []struct {
		path string
		d    config.GuardDirection
	}{{"guardrails.input", c.Guardrails.Input}, {"guardrails.output", c.Guardrails.Output}} {
		if _, err := preflight.BuildGuard(g.d); err != nil {
			ps = append(ps, c.Problem(g.path+".detectors", "%v", err))
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

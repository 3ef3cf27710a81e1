package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Envoy Gateway (gateway.envoyproxy.io/v1alpha1) and Gateway API
// (gateway.networking.k8s.io/v1) resources, as a strict schema of the fields
// Tollgate's files use. Envoy Gateway's own Go module is not available to
// this build (and pulls in controller-runtime and client-go), so these
// structs mirror its API reference: a field they do not know is an error,
// which is what catches typos. A field Envoy Gateway has but Tollgate does not
// use is also rejected here; add it when a file needs it.

// checker is implemented by schemas with value rules beyond field names.
type checker interface{ check() error }

type objectMeta = metav1.ObjectMeta

type policyTargetRef struct {
	Group       string  `json:"group"`
	Kind        string  `json:"kind"`
	Name        string  `json:"name"`
	SectionName *string `json:"sectionName,omitempty"`
}

type backendObjectRef struct {
	Group     *string `json:"group,omitempty"`
	Kind      *string `json:"kind,omitempty"`
	Name      string  `json:"name"`
	Namespace *string `json:"namespace,omitempty"`
	Port      *int32  `json:"port,omitempty"`
	Weight    *int32  `json:"weight,omitempty"`
}

type envoyExtensionPolicy struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		TargetRefs []policyTargetRef `json:"targetRefs"`
		ExtProc    []extProc         `json:"extProc,omitempty"`
		Wasm       []wasmExtension   `json:"wasm,omitempty"`
	} `json:"spec"`
}

type extProc struct {
	BackendRefs    []backendObjectRef `json:"backendRefs"`
	MessageTimeout *string            `json:"messageTimeout,omitempty"`
	FailOpen       *bool              `json:"failOpen,omitempty"`
	ProcessingMode *extProcMode       `json:"processingMode,omitempty"`
	Metadata       *extProcMetadata   `json:"metadata,omitempty"`
}

type extProcMode struct {
	Request           *extProcPhaseMode `json:"request,omitempty"`
	Response          *extProcPhaseMode `json:"response,omitempty"`
	AllowModeOverride *bool             `json:"allowModeOverride,omitempty"`
}

type extProcPhaseMode struct {
	Body       *string  `json:"body,omitempty"`
	Attributes []string `json:"attributes,omitempty"`
}

type extProcMetadata struct {
	AccessibleNamespaces []string `json:"accessibleNamespaces,omitempty"`
	WritableNamespaces   []string `json:"writableNamespaces,omitempty"`
}

type wasmExtension struct {
	Name     *string         `json:"name,omitempty"`
	RootID   *string         `json:"rootID,omitempty"`
	Code     wasmCode        `json:"code"`
	Config   json.RawMessage `json:"config,omitempty"`
	FailOpen *bool           `json:"failOpen,omitempty"`
	Env      *struct {
		HostKeys []string `json:"hostKeys,omitempty"`
	} `json:"env,omitempty"`
}

type wasmCode struct {
	Type       string         `json:"type"`
	HTTP       *wasmCodeByURL `json:"http,omitempty"`
	Image      *wasmCodeByURL `json:"image,omitempty"`
	PullPolicy *string        `json:"pullPolicy,omitempty"`
}

type wasmCodeByURL struct {
	URL           string  `json:"url"`
	SHA256        *string `json:"sha256,omitempty"`
	PullSecretRef *struct {
		Name      string  `json:"name"`
		Namespace *string `json:"namespace,omitempty"`
	} `json:"pullSecretRef,omitempty"`
}

var extProcBodyModes = []string{"Streamed", "Buffered", "BufferedPartial", "FullDuplexStreamed"}

func (p envoyExtensionPolicy) check() error {
	var errs []error
	if len(p.Spec.TargetRefs) == 0 {
		errs = append(errs, errors.New("spec.targetRefs is empty"))
	}
	for i, e := range p.Spec.ExtProc {
		if len(e.BackendRefs) == 0 {
			errs = append(errs, fmt.Errorf("spec.extProc[%d].backendRefs is empty", i))
		}
		if m := e.ProcessingMode; m != nil {
			for _, ph := range []*extProcPhaseMode{m.Request, m.Response} {
				if ph != nil && ph.Body != nil && !slices.Contains(extProcBodyModes, *ph.Body) {
					errs = append(errs, fmt.Errorf("spec.extProc[%d].processingMode: body %q is not one of %v", i, *ph.Body, extProcBodyModes))
				}
			}
		}
	}
	for i, w := range p.Spec.Wasm {
		switch {
		case w.Code.Type == "Image" && w.Code.Image != nil && w.Code.HTTP == nil:
		case w.Code.Type == "HTTP" && w.Code.HTTP != nil && w.Code.Image == nil:
		default:
			errs = append(errs, fmt.Errorf("spec.wasm[%d].code: type %q must be Image (with image) or HTTP (with http)", i, w.Code.Type))
		}
		if len(w.Config) > 0 && !json.Valid(w.Config) {
			errs = append(errs, fmt.Errorf("spec.wasm[%d].config is not JSON", i))
		}
	}
	if len(p.Spec.ExtProc)+len(p.Spec.Wasm) == 0 {
		errs = append(errs, errors.New("spec has neither extProc nor wasm"))
	}
	return errors.Join(errs...)
}

type backend struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Endpoints    []backendEndpoint `json:"endpoints"`
		AppProtocols []string          `json:"appProtocols,omitempty"`
		Fallback     *bool             `json:"fallback,omitempty"`
		TLS          *struct {
			WellKnownCACertificates *string `json:"wellKnownCACertificates,omitempty"`
			CACertificateRefs       []struct {
				Group string `json:"group"`
				Kind  string `json:"kind"`
				Name  string `json:"name"`
			} `json:"caCertificateRefs,omitempty"`
			InsecureSkipVerify *bool `json:"insecureSkipVerify,omitempty"`
		} `json:"tls,omitempty"`
	} `json:"spec"`
}

type backendEndpoint struct {
	FQDN *struct {
		Hostname string `json:"hostname"`
		Port     int32  `json:"port"`
	} `json:"fqdn,omitempty"`
	IP *struct {
		Address string `json:"address"`
		Port    int32  `json:"port"`
	} `json:"ip,omitempty"`
	Unix *struct {
		Path string `json:"path"`
	} `json:"unix,omitempty"`
}

func (b backend) check() error {
	var errs []error
	if len(b.Spec.Endpoints) == 0 {
		errs = append(errs, errors.New("spec.endpoints is empty"))
	}
	for i, e := range b.Spec.Endpoints {
		n := 0
		for _, set := range []bool{e.FQDN != nil, e.IP != nil, e.Unix != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, fmt.Errorf("spec.endpoints[%d]: exactly one of fqdn, ip, unix", i))
		}
		if e.FQDN != nil && (e.FQDN.Hostname == "" || e.FQDN.Port <= 0) {
			errs = append(errs, fmt.Errorf("spec.endpoints[%d].fqdn needs hostname and port", i))
		}
	}
	if t := b.Spec.TLS; t != nil && t.WellKnownCACertificates != nil && *t.WellKnownCACertificates != "System" {
		errs = append(errs, fmt.Errorf("spec.tls.wellKnownCACertificates %q: only System", *t.WellKnownCACertificates))
	}
	return errors.Join(errs...)
}

type httpRouteFilter struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		DirectResponse *struct {
			ContentType *string `json:"contentType,omitempty"`
			StatusCode  *int32  `json:"statusCode,omitempty"`
			Body        *struct {
				Type   string  `json:"type"`
				Inline *string `json:"inline,omitempty"`
			} `json:"body,omitempty"`
		} `json:"directResponse,omitempty"`
		CredentialInjection *struct {
			Header     *string `json:"header,omitempty"`
			Overwrite  *bool   `json:"overwrite,omitempty"`
			Credential struct {
				ValueRef struct {
					Group     *string `json:"group,omitempty"`
					Kind      *string `json:"kind,omitempty"`
					Name      string  `json:"name"`
					Namespace *string `json:"namespace,omitempty"`
				} `json:"valueRef"`
			} `json:"credential"`
		} `json:"credentialInjection,omitempty"`
	} `json:"spec"`
}

func (f httpRouteFilter) check() error {
	n := 0
	if f.Spec.DirectResponse != nil {
		n++
	}
	if f.Spec.CredentialInjection != nil {
		n++
		if f.Spec.CredentialInjection.Credential.ValueRef.Name == "" {
			return errors.New("spec.credentialInjection.credential.valueRef.name is required")
		}
	}
	if n != 1 {
		return errors.New("spec: exactly one of directResponse, credentialInjection")
	}
	return nil
}

type httpRoute struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		ParentRefs []struct {
			Group       *string `json:"group,omitempty"`
			Kind        *string `json:"kind,omitempty"`
			Namespace   *string `json:"namespace,omitempty"`
			Name        string  `json:"name"`
			SectionName *string `json:"sectionName,omitempty"`
		} `json:"parentRefs"`
		Hostnames []string        `json:"hostnames,omitempty"`
		Rules     []httpRouteRule `json:"rules"`
	} `json:"spec"`
}

type httpRouteRule struct {
	Name        *string             `json:"name,omitempty"`
	Matches     []httpRouteMatch    `json:"matches,omitempty"`
	Filters     []httpRouteFilterOp `json:"filters,omitempty"`
	BackendRefs []struct {
		backendObjectRef
		Filters []httpRouteFilterOp `json:"filters,omitempty"`
	} `json:"backendRefs,omitempty"`
	Timeouts *struct {
		Request        *string `json:"request,omitempty"`
		BackendRequest *string `json:"backendRequest,omitempty"`
	} `json:"timeouts,omitempty"`
}

type httpRouteMatch struct {
	Path *struct {
		Type  *string `json:"type,omitempty"`
		Value *string `json:"value,omitempty"`
	} `json:"path,omitempty"`
	Headers []struct {
		Type  *string `json:"type,omitempty"`
		Name  string  `json:"name"`
		Value string  `json:"value"`
	} `json:"headers,omitempty"`
	Method *string `json:"method,omitempty"`
}

type httpRouteFilterOp struct {
	Type         string `json:"type"`
	ExtensionRef *struct {
		Group string `json:"group"`
		Kind  string `json:"kind"`
		Name  string `json:"name"`
	} `json:"extensionRef,omitempty"`
	URLRewrite *struct {
		Hostname *string `json:"hostname,omitempty"`
	} `json:"urlRewrite,omitempty"`
	RequestHeaderModifier *struct {
		Set []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"set,omitempty"`
		Remove []string `json:"remove,omitempty"`
	} `json:"requestHeaderModifier,omitempty"`
}

func (r httpRoute) check() error {
	var errs []error
	if len(r.Spec.ParentRefs) == 0 {
		errs = append(errs, errors.New("spec.parentRefs is empty"))
	}
	for i, rule := range r.Spec.Rules {
		for j, f := range rule.Filters {
			ok := (f.Type == "ExtensionRef" && f.ExtensionRef != nil) ||
				(f.Type == "URLRewrite" && f.URLRewrite != nil) ||
				(f.Type == "RequestHeaderModifier" && f.RequestHeaderModifier != nil)
			if !ok {
				errs = append(errs, fmt.Errorf("spec.rules[%d].filters[%d]: type %q does not match its settings", i, j, f.Type))
			}
		}
		if len(rule.BackendRefs) == 0 && len(rule.Filters) == 0 {
			errs = append(errs, fmt.Errorf("spec.rules[%d] has neither backendRefs nor filters", i))
		}
	}
	return errors.Join(errs...)
}

type referenceGrant struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		From []struct {
			Group     string `json:"group"`
			Kind      string `json:"kind"`
			Namespace string `json:"namespace"`
		} `json:"from"`
		To []struct {
			Group string  `json:"group"`
			Kind  string  `json:"kind"`
			Name  *string `json:"name,omitempty"`
		} `json:"to"`
	} `json:"spec"`
}

// clientTrafficPolicy is the part of Envoy Gateway's ClientTrafficPolicy
// Tollgate's files use: the listener's connection buffer limit.
type clientTrafficPolicy struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		TargetRefs []policyTargetRef `json:"targetRefs"`
		Connection *struct {
			BufferLimit     *string `json:"bufferLimit,omitempty"`
			ConnectionLimit *struct {
				Value int64 `json:"value"`
			} `json:"connectionLimit,omitempty"`
		} `json:"connection,omitempty"`
	} `json:"spec"`
}

func (p clientTrafficPolicy) check() error {
	var errs []error
	if len(p.Spec.TargetRefs) == 0 {
		errs = append(errs, errors.New("spec.targetRefs is empty"))
	}
	if c := p.Spec.Connection; c != nil && c.BufferLimit != nil {
		q, err := resource.ParseQuantity(*c.BufferLimit)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("spec.connection.bufferLimit %q: %w", *c.BufferLimit, err))
		case q.Sign() <= 0 || q.Value() > 1<<32-1:
			errs = append(errs, fmt.Errorf("spec.connection.bufferLimit %q: must be between 1 and 4Gi", *c.BufferLimit))
		}
	}
	return errors.Join(errs...)
}

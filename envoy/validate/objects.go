package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
	istioext "istio.io/api/extensions/v1alpha1"
	istionet "istio.io/api/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
)

// objectValidators validates a Kubernetes-style object by "apiVersion/kind".
var objectValidators = map[string]func(js []byte) error{
	"v1/Namespace":                                        strictInto[corev1.Namespace],
	"v1/ConfigMap":                                        validateConfigMap,
	"v1/Service":                                          strictInto[corev1.Service],
	"v1/ServiceAccount":                                   strictInto[corev1.ServiceAccount],
	"apps/v1/Deployment":                                  validateDeployment,
	"policy/v1/PodDisruptionBudget":                       strictInto[policyv1.PodDisruptionBudget],
	"networking.istio.io/v1/ServiceEntry":                 istioSpec(func() proto.Message { return &istionet.ServiceEntry{} }),
	"networking.istio.io/v1/DestinationRule":              istioSpec(func() proto.Message { return &istionet.DestinationRule{} }),
	"networking.istio.io/v1/Gateway":                      istioSpec(func() proto.Message { return &istionet.Gateway{} }),
	"networking.istio.io/v1/VirtualService":               istioSpec(func() proto.Message { return &istionet.VirtualService{} }),
	"networking.istio.io/v1alpha3/EnvoyFilter":            validateEnvoyFilter,
	"extensions.istio.io/v1alpha1/WasmPlugin":             istioSpec(func() proto.Message { return &istioext.WasmPlugin{} }),
	"gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy": strictInto[envoyExtensionPolicy],
	"gateway.envoyproxy.io/v1alpha1/Backend":              strictInto[backend],
	"gateway.envoyproxy.io/v1alpha1/HTTPRouteFilter":      strictInto[httpRouteFilter],
	"gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy":  strictInto[clientTrafficPolicy],
	"gateway.networking.k8s.io/v1beta1/ReferenceGrant":    strictInto[referenceGrant],
	"gateway.networking.k8s.io/v1/HTTPRoute":              strictInto[httpRoute],
}

// typeMeta is the part of every object that says what it is.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

func validateObject(d document) error {
	var tm typeMeta
	if err := json.Unmarshal(d.js, &tm); err != nil {
		return fmt.Errorf("apiVersion/kind: %w", err)
	}
	key := tm.APIVersion + "/" + tm.Kind
	if key == "v1/ConfigMap" {
		if err := validateConfigMapDoc(d); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	}
	v, ok := objectValidators[key]
	if !ok {
		return fmt.Errorf("line %d: unsupported object %s (apiVersion %q, kind %q)", d.line, key, tm.APIVersion, tm.Kind)
	}
	if err := v(d.js); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// strictJSON decodes js into v case-sensitively, failing on unknown fields
// (Kubernetes' own strict decoding).
func strictJSON(js []byte, v any) error {
	strict, err := sigsjson.UnmarshalStrict(js, v, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// strictInto decodes an object into T strictly.
func strictInto[T any](js []byte) error {
	var v T
	if err := strictJSON(js, &v); err != nil {
		return err
	}
	if c, ok := any(v).(checker); ok {
		return c.check()
	}
	return nil
}

func validateConfigMap(js []byte) error {
	return validateConfigMapDoc(document{js: js})
}

// validateConfigMapDoc checks a ConfigMap; one carrying tollgate.yaml must
// carry a valid one, reported at the lines of the file when the value is a
// block scalar (data: {tollgate.yaml: |...}).
func validateConfigMapDoc(d document) error {
	var cm corev1.ConfigMap
	if err := strictJSON(d.js, &cm); err != nil {
		return err
	}
	raw, ok := cm.Data["tollgate.yaml"]
	if !ok {
		return nil
	}
	offset := 0
	if v := mappingValue(mappingValue(d.node, "data"), "tollgate.yaml"); v != nil && v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		offset = v.Line // the block's text starts on the line after its indicator
	}
	return validateTollgate([]byte(raw), offset)
}

// mappingValue is the value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// istioObject is the Kubernetes envelope of an Istio resource: the spec is
// an istio.io/api proto.
type istioObject struct {
	typeMeta
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     json.RawMessage   `json:"spec"`
}

func parseIstio(js []byte, spec proto.Message) error {
	var obj istioObject
	if err := strictJSON(js, &obj); err != nil {
		return err
	}
	if obj.Metadata.Name == "" {
		return errors.New("metadata.name is required")
	}
	if len(obj.Spec) == 0 {
		return errors.New("spec is required")
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(obj.Spec, spec); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	return nil
}

func istioSpec(newSpec func() proto.Message) func([]byte) error {
	return func(js []byte) error { return parseIstio(js, newSpec()) }
}

// validateEnvoyFilter parses the EnvoyFilter and each patch value as the
// Envoy message it patches: a whole message (ADD, INSERT_*, REPLACE) must
// also pass ValidateAll; a MERGE fragment need only parse.
func validateEnvoyFilter(js []byte) error {
	var ef istionet.EnvoyFilter
	if err := parseIstio(js, &ef); err != nil {
		return err
	}
	if len(ef.GetConfigPatches()) == 0 {
		return errors.New("spec.configPatches is empty")
	}
	var errs []error
	for i, cp := range ef.GetConfigPatches() {
		applyTo := cp.GetApplyTo().String()
		newMsg, ok := istioPatchTargets[applyTo]
		if !ok {
			errs = append(errs, fmt.Errorf("configPatches[%d]: applyTo %s is not supported", i, applyTo))
			continue
		}
		op := cp.GetPatch().GetOperation()
		if op == istionet.EnvoyFilter_Patch_REMOVE {
			continue
		}
		if cp.GetPatch().GetValue() == nil {
			errs = append(errs, fmt.Errorf("configPatches[%d]: patch.value is required for %s", i, op))
			continue
		}
		val, err := protojson.Marshal(cp.GetPatch().GetValue())
		if err != nil {
			errs = append(errs, fmt.Errorf("configPatches[%d]: %w", i, err))
			continue
		}
		complete := op != istionet.EnvoyFilter_Patch_MERGE
		if err := parseEnvoy(val, newMsg(), complete); err != nil {
			errs = append(errs, fmt.Errorf("configPatches[%d] (%s %s): %w", i, applyTo, op, err))
		}
	}
	return errors.Join(errs...)
}

// knownResources are the resource names a container may request; the API
// server checks these only at apply time.
var knownResources = map[corev1.ResourceName]bool{
	corev1.ResourceCPU: true, corev1.ResourceMemory: true, corev1.ResourceEphemeralStorage: true,
}

func validateDeployment(js []byte) error {
	var d appsv1.Deployment
	if err := strictJSON(js, &d); err != nil {
		return err
	}
	var errs []error
	spec := d.Spec.Template.Spec
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
			for name := range rl {
				if !knownResources[name] && !strings.Contains(string(name), "/") {
					errs = append(errs, fmt.Errorf("container %s: unknown resource %q", c.Name, name))
				}
			}
		}
	}
	return errors.Join(errs...)
}

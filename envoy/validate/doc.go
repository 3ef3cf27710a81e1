// Package validate checks the deployment files users apply (everything under
// envoy/ in this repository, or their own copies) before they reach a proxy.
//
//   - Envoy bootstraps and filter fragments are parsed into Envoy's typed
//     protos (unknown fields rejected, Any types resolved) and pass ValidateAll,
//     including every message packed in an Any.
//   - Istio resources are parsed with istio.io/api types; an EnvoyFilter's patch
//     values must parse as the Envoy message they patch.
//   - Kubernetes objects are decoded strictly (case-sensitive, unknown fields
//     rejected) into k8s.io/api types.
//   - Envoy Gateway and Gateway API resources, Prometheus rule files and
//     promtool rule tests are checked against strict schemas of their formats.
//   - A tollgate.yaml (alone or inside a ConfigMap) is loaded by pkg/config.
//
// A typo in a field name or a wrong type URL is an error. It backs
// `tollgate validate --envoy FILE`.
package validate

package envoysim

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// DefaultNotFoundBody is the body of the 404 sent when MetadataRoutes
// matches nothing, shaped like Tollgate's catch-all direct_response.
const DefaultNotFoundBody = `{"error":{"message":"no route","type":"invalid_request_error","code":"model_not_found"}}`

// MetadataRouting routes on dynamic metadata, like Envoy's
// RouteMatch.dynamic_metadata with a MetadataMatcher (filter = Namespace,
// path = [Key], string exact match on the Routes key). The route is picked
// when the request arrives (before any ext_proc reply, so there is no
// metadata yet and nothing matches) and re-picked only after an honoured
// clear_route_cache. Request headers are never consulted.
type MetadataRouting struct {
	Namespace string
	Key       string
	// Routes maps the metadata value to a route.
	Routes map[string]Route
	// NotFoundBody is the body of the 404 direct response when nothing
	// matches (default DefaultNotFoundBody, content-type application/json).
	NotFoundBody string
}

// Route is one route's action: an aggregate cluster whose targets are tried
// in order (priority i = target i) under a retry policy.
type Route struct {
	// Cluster is the route's cluster name (Tollgate: the alias's aggregate
	// cluster); it is xds.cluster_name for the downstream filter. Default:
	// the first target's ClusterName.
	Cluster string
	// Targets are the aggregate cluster's priorities in order.
	Targets []Target
	Retry   RetryPolicy
}

// Target is one priority of a route: the cluster name the upstream filter
// sees as xds.cluster_name, and the base URL (scheme://host[:port]; a path
// is prepended to the request path) requests are sent to.
type Target struct {
	ClusterName string
	URL         string
	// Metadata is the host's endpoint filter_metadata (namespace -> Struct),
	// read by xds.upstream_host_metadata attributes.
	Metadata map[string]*structpb.Struct
}

// RetryPolicy is the subset of Envoy's RetryPolicy the control plane emits.
// With previous_priorities (update_frequency 1) attempt i goes to target i
// (modulo the number of targets once every priority has been tried).
type RetryPolicy struct {
	// RetryOn is Envoy's retry_on list: "5xx", "gateway-error", "reset",
	// "connect-failure", "retriable-status-codes" (others are refused).
	RetryOn string
	// RetriableStatusCodes are used with "retriable-status-codes".
	RetriableStatusCodes []int
	// NumRetries is the number of retries after the first attempt.
	NumRetries int
	// PerTryTimeout bounds each attempt until its response headers reach
	// the router (0: none). Driven by Config.Clock.
	PerTryTimeout time.Duration
}

// retryOn flags.
type retryOn uint8

const (
	retryOn5xx retryOn = 1 << iota
	retryOnGatewayError
	retryOnReset
	retryOnConnectFailure
	retryOnRetriableStatusCodes
)

func parseRetryOn(s string) (retryOn, error) {
	var r retryOn
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "":
		case "5xx":
			r |= retryOn5xx
		case "gateway-error":
			r |= retryOnGatewayError
		case "reset":
			r |= retryOnReset
		case "connect-failure":
			r |= retryOnConnectFailure
		case "retriable-status-codes":
			r |= retryOnRetriableStatusCodes
		default:
			return 0, fmt.Errorf("retry_on %q: %w", f, ErrUnsupported)
		}
	}
	return r, nil
}

// failureKind classifies an attempt that ended without response headers.
type failureKind int

const (
	failNone failureKind = iota
	failConnect
	failReset
	failPerTryTimeout
)

// route is a resolved Route.
type route struct {
	name    string // routing key (metadata value, header value, or route name)
	cluster string // the route's cluster: xds.cluster_name, and whose upstream filters and circuit breaker apply
	targets []target
	retryOn retryOn
	codes   map[int]bool
	retries int
	perTry  time.Duration
	// prevPriorities: retry_priority previous_priorities (update_frequency
	// 1): attempt i goes to priority i, modulo the priorities once every one
	// was tried. Without it every attempt goes to priority 0 (all hosts are
	// healthy in the emulator).
	prevPriorities bool
	// maxRetries is the route cluster's circuit_breakers max_retries (0:
	// unlimited, for routes not built from resources); activeRetries the
	// retries in flight against it.
	maxRetries     int
	activeRetries  *atomic.Int64
	upFilterConfig *extprocfilterv3.ExternalProcessor // the route cluster's upstream ext_proc filter
	upFilter       *filterConf                        // built from upFilterConfig by New
}

// target is one priority of a route's cluster: the host an attempt reaches.
type target struct {
	cluster  string // the cluster the host belongs to (an aggregate's member)
	url      *url.URL
	metadata map[string]*structpb.Struct // the endpoint's filter_metadata
}

// retriableStatus is RetryStateImpl::wouldRetryFromHeaders for the modelled
// retry_on values.
func (r *route) retriableStatus(code int) bool {
	switch {
	case r.retryOn&retryOn5xx != 0 && code >= 500:
		return true
	case r.retryOn&retryOnGatewayError != 0 && (code == 502 || code == 503 || code == 504):
		return true
	case r.retryOn&retryOnRetriableStatusCodes != 0 && r.codes[code]:
		return true
	}
	return false
}

// retriableFailure is RetryStateImpl::wouldRetryFromReset plus the per-try
// timeout rule (retried under 5xx, gateway-error and reset).
func (r *route) retriableFailure(k failureKind) bool {
	switch k {
	case failConnect:
		return r.retryOn&(retryOn5xx|retryOnGatewayError|retryOnReset|retryOnConnectFailure) != 0
	case failReset:
		return r.retryOn&(retryOn5xx|retryOnGatewayError|retryOnReset) != 0
	case failPerTryTimeout:
		return r.retryOn&(retryOn5xx|retryOnGatewayError|retryOnReset) != 0
	}
	return false
}

func resolveRoute(name string, rt Route) (*route, error) {
	if len(rt.Targets) == 0 {
		return nil, errors.New("no targets")
	}
	r := &route{name: name, cluster: rt.Cluster, retries: rt.Retry.NumRetries, perTry: rt.Retry.PerTryTimeout, prevPriorities: true}
	var errs []error
	for i, t := range rt.Targets {
		u, err := parseBase(t.URL)
		if err != nil {
			errs = append(errs, fmt.Errorf("targets[%d]: %w", i, err))
		}
		if t.ClusterName == "" {
			errs = append(errs, fmt.Errorf("targets[%d]: empty ClusterName", i))
		}
		r.targets = append(r.targets, target{cluster: t.ClusterName, url: u, metadata: t.Metadata})
	}
	if r.cluster == "" {
		r.cluster = rt.Targets[0].ClusterName
	}
	on, err := parseRetryOn(rt.Retry.RetryOn)
	if err != nil {
		errs = append(errs, err)
	}
	r.retryOn = on
	if rt.Retry.NumRetries < 0 || rt.Retry.PerTryTimeout < 0 {
		errs = append(errs, errors.New("negative NumRetries or PerTryTimeout"))
	}
	if len(rt.Retry.RetriableStatusCodes) > 0 {
		r.codes = make(map[int]bool, len(rt.Retry.RetriableStatusCodes))
		for _, c := range rt.Retry.RetriableStatusCodes {
			r.codes[c] = true
		}
	}
	return r, errors.Join(errs...)
}

// singleRoute is the one-target route of Config.Upstream and Config.Routes.
func singleRoute(name, cluster string, u *url.URL) *route {
	return &route{name: name, cluster: cluster, targets: []target{{cluster: cluster, url: u}}}
}

// metadataString returns dynamic metadata namespace/key as a string, the
// way a string-exact MetadataMatcher reads it (other kinds never match).
func metadataString(md map[string]*structpb.Struct, ns, key string) (string, bool) {
	st, ok := md[ns]
	if !ok {
		return "", false
	}
	v, ok := st.GetFields()[key]
	if !ok {
		return "", false
	}
	sv, ok := v.GetKind().(*structpb.Value_StringValue)
	if !ok {
		return "", false
	}
	return sv.StringValue, true
}

package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previouspriorities "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-dev/tollgate/pkg/contract"
)

// Retry settings for provider fallback.
const (
	// RetryOn are the conditions that move a request to the next target.
	RetryOn = "5xx,reset,connect-failure,retriable-status-codes"
	// previousPriorities makes each retry skip the priorities (targets)
	// already tried: the aggregate cluster gives target i priority i.
	previousPriorities = "envoy.retry_priorities.previous_priorities"
)

// RetriableStatusCodes are the provider answers that count as "try the next
// target": rate limited and overloaded.
func RetriableStatusCodes() []uint32 { return []uint32{429, 503} }

// NotFoundBody is the OpenAI-shaped 404 for requests no alias route matched
// (normally ext_proc has already answered unknown models itself).
const NotFoundBody = `{"error":{"message":"no route for this request: the model is not a configured alias","type":"invalid_request_error","code":"model_not_found"}}`

// routeConfig has one route per alias, in alias order, and a final
// catch-all 404. envoy selects the Envoy form (dynamic-metadata match, the
// fallback retry policy, host rewrite, no route timeout); the gRPC variant
// matches the header and fails over by priority without retries.
func (m *Model) routeConfig(envoy bool) (*routev3.RouteConfiguration, error) {
	withRetry := envoy
	var routes []*routev3.Route
	for _, a := range m.Aliases {
		action := &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: a.Cluster},
		}
		if withRetry {
			// No route timeout: a streamed completion may run for minutes;
			// each attempt is bounded by per_try_timeout instead.
			action.Timeout = durationpb.New(0)
			if a.HostRewrite {
				action.HostRewriteSpecifier = &routev3.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)}
			}
			rp, err := retryPolicy(a)
			if err != nil {
				return nil, err
			}
			action.RetryPolicy = rp
		}
		routes = append(routes, &routev3.Route{
			Name:   a.Name,
			Match:  aliasMatch(a.Name, withRetry),
			Action: &routev3.Route_Route{Route: action},
		})
	}
	routes = append(routes, &routev3.Route{
		Name:  "unknown-model",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 404,
			Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: NotFoundBody}},
		}},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	})
	return &routev3.RouteConfiguration{
		Name: RouteConfigName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "tollgate",
			Domains: []string{"*"},
			Routes:  routes,
		}},
	}, nil
}

// aliasMatch selects an alias's route. For Envoy it matches the dynamic
// metadata the downstream ext_proc role writes when it admits a request
// (filter contract.MetadataNamespace, key contract.MetadataRoute): a client cannot set dynamic
// metadata, so a request reaches a provider only through ext_proc, even with
// failure_mode open or the wasm router off. x-tollgate-route, which ext_proc
// also sets, is informational for Envoy. Proxyless gRPC clients have no
// ext_proc and send contract.HeaderRoute themselves.
func aliasMatch(alias string, metadata bool) *routev3.RouteMatch {
	m := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	exact := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: alias}}
	if metadata {
		m.DynamicMetadata = []*matcherv3.MetadataMatcher{{
			Filter: contract.MetadataNamespace,
			Path:   []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: contract.MetadataRoute}}},
			Value:  &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: exact}},
		}}
		return m
	}
	m.Headers = []*routev3.HeaderMatcher{{
		Name:                 contract.HeaderRoute,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact},
	}}
	return m
}

// retryPolicy moves each retry to the next target: num_retries is
// targets-1 and previous_priorities (update_frequency 1) excludes every
// priority already tried. Envoy only retries while nothing of the response
// has been sent downstream: once a provider's headers (and so the first SSE
// bytes) reach the client, the attempt is final, so a stream is never
// replayed or spliced. No hedging (hedge_on_per_try_timeout stays false): a
// duplicate attempt would double the provider bill.
func retryPolicy(a Alias) (*routev3.RetryPolicy, error) {
	pp, err := toAny(&previouspriorities.PreviousPrioritiesConfig{UpdateFrequency: 1})
	if err != nil {
		return nil, err
	}
	rp := &routev3.RetryPolicy{
		RetryOn:              RetryOn,
		NumRetries:           wrapperspb.UInt32(uint32(len(a.Targets) - 1)),
		RetriableStatusCodes: RetriableStatusCodes(),
		RetryPriority: &routev3.RetryPolicy_RetryPriority{
			Name:       previousPriorities,
			ConfigType: &routev3.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: pp},
		},
	}
	if a.PerTryTimeout > 0 {
		rp.PerTryTimeout = durationpb.New(a.PerTryTimeout)
	}
	return rp, nil
}

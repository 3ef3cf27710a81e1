package extproc

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
)

// upstream is the per-attempt role, running in the upstream filter chain of
// an alias's aggregate cluster: Envoy sends the request headers, then the
// buffered body, once per attempt (retries build a fresh chain). The
// attempt's target comes from the chosen host's endpoint metadata
// (contract.UpstreamRequestAttributes()), since xds.cluster_name is the
// aggregate on every attempt.
type upstream struct {
	s        *Server
	rt       *runtime
	target   config.Target
	resolved bool
	done     bool

	// What an attempt cut before its answer is billed from: the tenant and
	// route the downstream role admitted it with (forwarded as
	// metadata_context), the request id, the operation and body it sent,
	// and when.
	tenant, route, requestID string
	account                  string // the virtual key's ledger account, if it has caps
	op                       llm.Operation
	body                     []byte
	sentAt                   time.Time
	answered                 bool
}

func newUpstream(s *Server, rt *runtime) *upstream { return &upstream{s: s, rt: rt} }

func (u *upstream) complete() bool { return u.done }

func (u *upstream) handle(_ context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	u.admission(req)
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		u.resolve(req)
		if r.RequestHeaders.GetEndOfStream() {
			u.done = true
			u.sentAt = u.s.now()
		}
		cr := u.credentials()
		u.pathFor(fromHeaderMap(r.RequestHeaders.GetHeaders(), nil).get(":path"), cr)
		return requestHeadersReply(cr), nil
	case *extprocv3.ProcessingRequest_RequestBody:
		u.done = true
		u.body, u.sentAt = r.RequestBody.GetBody(), u.s.now()
		return u.onBody(req, r.RequestBody.GetBody()), nil
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		// The provider answered this attempt (any status): whatever it
		// bills, the downstream role meters from the answer, or it is an
		// error providers do not bill.
		u.done, u.answered = true, true
		u.countAttempt("answered")
		return responseHeadersReply(nil, nil), nil
	case *extprocv3.ProcessingRequest_ResponseBody:
		return responseBodyReply(nil), nil
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}, nil
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}, nil
	}
	return nil, &protocolError{reason: "empty", detail: "ProcessingRequest without a request case"}
}

// admission reads the tenant and route the downstream role wrote as dynamic
// metadata, which the shipped filter forwards on every message.
func (u *upstream) admission(req *extprocv3.ProcessingRequest) {
	if u.tenant != "" {
		return
	}
	md := req.GetMetadataContext().GetFilterMetadata()[contract.MetadataNamespace].GetFields()
	u.tenant = md[contract.MetadataTenant].GetStringValue()
	u.route = md[contract.MetadataRoute].GetStringValue()
	u.account = md[contract.MetadataAccount].GetStringValue()
	if u.requestID == "" {
		u.requestID = valueString(attributes(req).GetFields()["request.id"])
	}
}

// finish bills an attempt that never got its answer but ran for the whole
// per-try timeout: Envoy starts that timer only once the connection is up
// (UpstreamRequest::onPoolReady), so the provider received the request
// and, like every provider, bills the prompt it processed. An attempt that
// ended sooner (connect failure, reset, the client leaving) is not billed
// here: the downstream role meters a request the client abandoned.
func (u *upstream) finish(ctx context.Context, _ bool) {
	if u.answered || u.sentAt.IsZero() || !u.resolved {
		return
	}
	limit := u.perTryTimeout()
	if limit <= 0 || u.s.now().Sub(u.sentAt) < limit {
		u.countAttempt("unanswered")
		return
	}
	u.countAttempt("timed_out")
	if u.tenant == "" {
		// A filter without the forwarded metadata (hand-written config):
		// nobody to bill; counted so that the gap is visible.
		u.s.metrics.Failures.WithLabelValues("upstream_metering", "open").Inc()
		return
	}
	u.billTimedOut(ctx)
}

// perTryTimeout is the per_try_timeout of the attempt's route (the one the
// control plane wrote), or its provider's timeout when the route is unknown.
func (u *upstream) perTryTimeout() time.Duration {
	if _, ok := u.rt.cfg.Models[u.route]; ok {
		return u.rt.cfg.AttemptTimeout(u.route)
	}
	return u.rt.cfg.Providers[u.target.Provider].Timeout
}

// billTimedOut charges the tenant the attempt's prompt at the target's input
// price, counted with the target's tokenizer, without a cap check: the
// provider has billed it already. Output the provider may have generated
// before it noticed the reset is invisible and not billed.
func (u *upstream) billTimedOut(ctx context.Context) {
	rt, now := u.rt, u.s.now()
	price, ok := rt.price(u.target.Provider, u.target.Model, now)
	if !ok {
		rt.unpriced(u.s.metrics, u.target.Provider, u.target.Model)
		return
	}
	req, err := llm.ParseRequest(u.op, u.body)
	if err != nil {
		return
	}
	tokens := countTokens(u.s.tokens, u.target.Model, req.PromptText())
	cost := meter.Cost(price, meter.Usage{InputTokens: tokens, Estimated: true})
	if cost <= 0 {
		return
	}
	u.s.metrics.CostUSD.WithLabelValues(rt.tenantLabels.Value(u.tenant), rt.providerLabels.Value(u.target.Provider), rt.targetLabels.Value(u.target.Model)).Add(cost.USD())
	if u.s.budgets == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	id := u.s.reservationID(u.requestID) + "/timed-out"
	for _, account := range []string{u.tenant, u.account} {
		if account == "" {
			continue
		}
		if err := u.s.budgets.Charge(cctx, account, cost, id); err != nil {
			u.s.metrics.Failures.WithLabelValues("budgets", string(rt.cfg.FailureMode.Budgets)).Inc()
			u.s.log.Error("charging a timed-out attempt failed", "account", account, "err", err)
		}
	}
}

func (u *upstream) countAttempt(result string) {
	if !u.resolved {
		return
	}
	u.s.metrics.UpstreamAttempts.WithLabelValues(u.rt.providerLabels.Value(u.target.Provider), u.rt.targetLabels.Value(u.target.Model), result).Inc()
}

// resolve finds the attempt's target from the host attributes (sent with
// the first request-direction message).
func (u *upstream) resolve(req *extprocv3.ProcessingRequest) {
	if u.resolved {
		return
	}
	provider, model := hostTarget(attributes(req))
	if provider == "" || model == "" {
		return
	}
	if _, ok := u.rt.cfg.Providers[provider]; !ok {
		return
	}
	u.target, u.resolved = config.Target{Provider: provider, Model: model}, true
}

// credentials replaces whatever credential the request carries by the
// target provider's own. The headers are held until the body reply
// (request headers SEND, body BUFFERED), so either reply may carry it; the
// headers reply does, so that a bodiless request is covered too.
func (u *upstream) credentials() *extprocv3.CommonResponse {
	var m mutation
	m.removeHeader("x-api-key")
	m.removeHeader("proxy-authorization")
	if !u.resolved {
		m.removeHeader("api-key")
	}
	for _, h := range []string{contract.HeaderRoute, contract.HeaderTenant, contract.HeaderTier, contract.HeaderKeyID} {
		m.removeHeader(h) // Tollgate's own headers are not the provider's business
	}
	if !u.resolved {
		// Without the host metadata the attempt goes out without any
		// credential; count it so a misconfigured filter is visible.
		u.s.metrics.Failures.WithLabelValues("upstream_target", "open").Inc()
		u.s.log.Warn("upstream ext_proc: the chosen host names no Tollgate target; attempt sent without a provider key")
		m.removeHeader("authorization")
		return common(&m, nil, false)
	}
	prov := u.rt.cfg.Providers[u.target.Provider]
	// The header map is shared by every attempt: the credential header
	// this attempt does not use is removed, whatever an earlier attempt (or
	// the client) put there.
	header, value, unused := "authorization", "Bearer ", "api-key"
	if prov.Azure() {
		header, value, unused = "api-key", "", "authorization"
	}
	m.removeHeader(unused)
	switch key := u.rt.getenv(prov.APIKeyEnv); {
	case prov.APIKeyEnv == "":
		m.removeHeader(header)
	case key != "":
		m.setHeader(header, value+key)
	default:
		u.s.metrics.Failures.WithLabelValues("credentials", "open").Inc()
		u.s.log.Error("provider credential variable is empty", "provider", u.target.Provider, "env", prov.APIKeyEnv)
		m.removeHeader(header)
	}
	return common(&m, nil, false)
}

// pathFor rewrites the request path for the attempt's target: an OpenAI
// kind gets its base_url path prepended (for example "/openai" of
// https://api.groq.com/openai), an Azure kind gets its deployment path and
// api-version (azurePath). Envoy's clusters carry only the address, and one
// route cannot rewrite the path differently per target. The header map is
// the router's, shared by every attempt, so what an earlier attempt changed
// is undone first (clientPath).
func (u *upstream) pathFor(path string, cr *extprocv3.CommonResponse) {
	if path == "" {
		return
	}
	orig := path
	path = clientPath(path, u.rt.cfg.Providers)
	u.op = llm.OperationForPath(path)
	if u.resolved {
		prov := u.rt.cfg.Providers[u.target.Provider]
		if prov.Azure() {
			path = azurePath(path, u.rt.cfg.Deployment(u.route, u.target.Provider, u.target.Model), prov.APIVersion)
		} else {
			path = basePath(prov.BaseURL) + path
		}
	}
	if path == orig {
		return
	}
	m := &mutation{set: cr.GetHeaderMutation().GetSetHeaders(), remove: cr.GetHeaderMutation().GetRemoveHeaders()}
	m.setHeader(":path", path)
	cr.HeaderMutation = m.proto()
}

// azureDeployments is the path prefix of Azure OpenAI's data plane.
const azureDeployments = "/openai/deployments/"

// clientPath is the path the client sent, recovered from what an earlier
// attempt made of it: an Azure deployment path back to /v1/... without
// the api-version it added, or a base_url prefix taken off.
func clientPath(path string, providers map[string]config.Provider) string {
	p, query, _ := strings.Cut(path, "?")
	if rest, ok := strings.CutPrefix(p, azureDeployments); ok {
		if _, op, ok := strings.Cut(rest, "/"); ok {
			p = "/v1/" + op
			query = withoutParam(query, "api-version")
			if query == "" {
				return p
			}
			return p + "?" + query
		}
	}
	for _, pv := range providers {
		if pre := basePath(pv.BaseURL); pre != "" && strings.HasPrefix(p, pre+"/") {
			path = strings.TrimPrefix(path, pre)
			break
		}
	}
	return path
}

// azurePath turns a client path (/v1/chat/completions, /v1/embeddings,
// /v1/completions, with or without a query) into Azure OpenAI's
// /openai/deployments/{deployment}/chat/completions?api-version=V, keeping
// the client's other query parameters. A path that is not /v1/... is
// returned as it is.
func azurePath(path, deployment, version string) string {
	p, query, _ := strings.Cut(path, "?")
	op, ok := strings.CutPrefix(p, "/v1/")
	if !ok || op == "" {
		return path
	}
	query = withoutParam(query, "api-version")
	var b strings.Builder
	b.Grow(len(azureDeployments) + len(deployment) + len(op) + len(query) + len(version) + 16)
	b.WriteString(azureDeployments)
	b.WriteString(url.PathEscape(deployment))
	b.WriteByte('/')
	b.WriteString(op)
	b.WriteByte('?')
	if query != "" {
		b.WriteString(query)
		b.WriteByte('&')
	}
	b.WriteString("api-version=")
	b.WriteString(url.QueryEscape(version))
	return b.String()
}

// withoutParam is a raw query without any name=... (or bare name)
// parameter, the others kept in order and unescaped.
func withoutParam(query, name string) string {
	if query == "" || !strings.Contains(query, name) {
		return query
	}
	kept := make([]string, 0, strings.Count(query, "&")+1)
	for part := range strings.SplitSeq(query, "&") {
		k, _, _ := strings.Cut(part, "=")
		if k == name || part == "" {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}

// basePath is a base_url's path without a trailing slash ("" for none).
func basePath(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// onBody rewrites the model for this attempt's target.
func (u *upstream) onBody(req *extprocv3.ProcessingRequest, body []byte) *extprocv3.ProcessingResponse {
	t := time.Now()
	defer u.s.timeStage(stageUpstream, t)
	u.resolve(req)
	if !u.resolved {
		return requestBodyReply(nil)
	}
	newBody, changed, err := llm.SetModel(body, u.target.Model)
	if err != nil {
		newBody, changed = body, false
	}
	// Always: Envoy keeps header mutations on the router's header map across
	// retries (UpstreamRequest::acceptHeadersFromRouter decodes the router's
	// downstream headers), so a length set for an earlier attempt's body
	// would be stale for this one.
	var m mutation
	m.setHeader("content-length", strconv.Itoa(len(newBody)))
	return requestBodyReply(common(&m, newBody, changed))
}

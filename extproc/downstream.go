package extproc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
)

// phase is where a downstream exchange stands.
type phase uint8

const (
	phaseStart         phase = iota // nothing seen yet
	phaseReqHeaders                 // request headers seen, body may follow
	phaseReqDone                    // request phases answered; response next
	phaseRespHeaders                // response headers seen
	phaseRespStreaming              // response body streamed chunk by chunk
	phaseDone                       // response complete
)

// downstream is the state of one HTTP request in the downstream role.
type downstream struct {
	s     *Server
	rt    *runtime
	phase phase
	start time.Time

	headers   headerMap
	body      []byte // the request body as Envoy sent it
	op        llm.Operation
	pass      bool // not an LLM path: pass through untouched
	id        identity
	alias     string
	model     config.Model
	req       *llm.Request
	stripUse  bool // we asked for the usage chunk; the client did not
	requestID string

	forwarded bool // the request went on to the provider
	status    int
	provider  string
	target    string // model name at the provider
	// rewriteError: the response is a non-JSON error (an Envoy local
	// reply) whose body becomes an OpenAI-shaped error.
	rewriteError bool
	respHasCL    bool
	span         trace.Span // the request's span (non-recording when tracing is off)

	// The state of each concern, kept apart (the stages that use it are
	// named in each type's comment).
	meterState
	streamState
	guardState
	governanceState
	cachingState
	compression compression // what prompt compression did (compression.go)

	outcome  string
	finished bool
}

// meterState is what the budget, ratelimit and meter stages and the end of
// the exchange share: the hold, the rate limiter's charge and the usage.
type meterState struct {
	hold         *meter.Reservation
	rl           rateState // the rate limiter's charge, corrected in settle
	usage        llm.Usage
	hasUsage     bool
	respModel    string // the model the provider says answered
	fingerprint  string // its system_fingerprint
	finalCost    meter.Money
	finalOutcome string
}

// streamState is a streamed answer's decoding (stream_chunk).
type streamState struct {
	sse        llm.SSEDecoder
	out        []byte
	text       strings.Builder // streamed completion text, for estimates
	firstToken time.Time
	sawDone    bool
}

// guardState is what guard_input, guard_output and the streaming guard
// found and changed.
type guardState struct {
	findings       []findingRecord
	inputRedacted  bool
	outputModified bool
	outputPII      bool
	sg             *streamGuard
	streamStopped  bool            // an output block ended the stream for the client
	released       strings.Builder // streamed text the client received (guarded streams)
}

// governanceState is what the prompt and complexity stages decided.
type governanceState struct {
	prompt       string // registry prompt used, name@version
	tier         string // complexity tier, when routed
	virtualAlias string // the alias the client named when routing picked another
}

// cachingState is cache_lookup's and cache_store's.
type cachingState struct {
	creq       *cache.Request
	cacheState string // x-tollgate-cache: miss | bypass
	noStore    bool   // cache-control: no-store
	acc        *llm.StreamAccumulator
}

func newDownstream(s *Server, rt *runtime) *downstream {
	return &downstream{s: s, rt: rt, start: s.now(), headers: make(headerMap, 8), span: noopSpan}
}

func (d *downstream) complete() bool { return d.phase == phaseDone }

func (d *downstream) handle(ctx context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		if d.phase != phaseStart {
			return nil, d.unexpected(req)
		}
		d.phase = phaseReqHeaders
		fromHeaderMap(r.RequestHeaders.GetHeaders(), d.headers)
		return d.onRequestHeaders(ctx, r.RequestHeaders.GetEndOfStream()), nil

	case *extprocv3.ProcessingRequest_RequestBody:
		if d.phase != phaseReqHeaders {
			// The shipped filter sends request headers first: a body
			// without them means request_header_mode SKIP, where Envoy has
			// already routed the request and would drop this reply's
			// header mutations (credential removal, route headers).
			return nil, d.unexpected(req)
		}
		d.phase = phaseReqDone
		return d.onRequestBody(ctx, r.RequestBody.GetBody()), nil

	case *extprocv3.ProcessingRequest_RequestTrailers:
		if d.phase != phaseReqHeaders && d.phase != phaseReqDone {
			return nil, d.unexpected(req)
		}
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{
			RequestTrailers: &extprocv3.TrailersResponse{}}}, nil

	case *extprocv3.ProcessingRequest_ResponseHeaders:
		switch d.phase {
		case phaseStart:
			// No request message: a local reply answered before the
			// request reached this filter, or a per-route override.
			d.passThrough("no_request")
		case phaseReqHeaders:
			// Headers seen, no body: an LLM path was answered in the
			// headers phase or the request had no body; nothing to meter.
			if d.op == llm.OpUnknown {
				d.passThrough("no_request_body")
			}
		case phaseReqDone:
		default:
			return nil, d.unexpected(req)
		}
		d.phase = phaseRespHeaders
		return d.onResponseHeaders(r.ResponseHeaders, attributes(req)), nil

	case *extprocv3.ProcessingRequest_ResponseBody:
		switch d.phase {
		case phaseRespHeaders:
			if !r.ResponseBody.GetEndOfStream() {
				// A partial body in BUFFERED mode cannot happen; in any
				// other mode we did not ask for, process it as a stream.
				d.phase = phaseRespStreaming
				return d.onStreamChunk(ctx, r.ResponseBody), nil
			}
			d.phase = phaseDone
			return d.onResponseBody(ctx, r.ResponseBody.GetBody()), nil
		case phaseRespStreaming:
			return d.onStreamChunk(ctx, r.ResponseBody), nil
		}
		return nil, d.unexpected(req)

	case *extprocv3.ProcessingRequest_ResponseTrailers:
		if d.phase < phaseRespHeaders {
			return nil, d.unexpected(req)
		}
		if d.phase == phaseRespStreaming {
			d.endStream(ctx)
		}
		d.phase = phaseDone
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{
			ResponseTrailers: &extprocv3.TrailersResponse{}}}, nil
	}
	return nil, &protocolError{reason: "empty", detail: "ProcessingRequest without a request case"}
}

func (d *downstream) unexpected(req *extprocv3.ProcessingRequest) error {
	return &protocolError{reason: kindOf(req), detail: fmt.Sprintf("%s in phase %d", kindOf(req), d.phase)}
}

func (d *downstream) passThrough(reason string) {
	if !d.pass {
		d.pass = true
		d.outcome = "passthrough"
		d.s.metrics.Passthrough.WithLabelValues(reason).Inc()
	}
}

// onRequestHeaders authenticates early (a bad key never costs a body
// transfer), answers /v1/models, and releases everything Tollgate does not
// handle with one message: a mode_override turns off the rest of the
// exchange for pass-through paths.
func (d *downstream) onRequestHeaders(ctx context.Context, endOfStream bool) *extprocv3.ProcessingResponse {
	path := d.headers.get(":path")
	d.op = llm.OperationForPath(path)
	if d.op == llm.OpUnknown {
		if isModelsPath(path) {
			return d.listModels()
		}
		if name, ok := unsupportedAPIPath(path); ok {
			return d.rejectWith(reject(404, llm.TypeInvalidRequest, "unsupported_path", "unsupported_path",
				"Tollgate does not serve "+name+"; it serves /v1/chat/completions, /v1/completions, /v1/embeddings, POST /v1/responses and /v1/models."))
		}
		d.passThrough("path")
		return &extprocv3.ProcessingResponse{
			Response:     &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}},
			ModeOverride: overridePassThrough,
		}
	}
	d.requestID = d.headers.get("x-request-id")
	d.startSpan(ctx)
	t := time.Now()
	id, rej := d.rt.tenants.resolve(d.headers)
	d.stage(stageAuth, t)
	if rej != nil {
		return d.rejectWith(rej)
	}
	d.id = id
	if endOfStream {
		// An LLM path without a body: answer 400 right away.
		return d.rejectWith(reject(400, llm.TypeInvalidRequest, llm.CodeInvalidJSON, "bad_request", "request body is empty"))
	}
	return requestHeadersReply(nil)
}

// rejectWith answers the client with r. A budget hold taken before the
// rejection is released here: a rejected request costs nothing.
func (d *downstream) rejectWith(r *rejection) *extprocv3.ProcessingResponse {
	d.outcome = r.outcome
	d.phase = phaseDone
	d.releaseHold()
	return immediate(r)
}

// onRequestBody runs the request stages in order (the key was checked at the
// headers): parse, prompt, complexity, route (tier allow-list, canary),
// guardrails, cache, mutate, rate limits, budget, then the rewrite that
// removes the client's credentials and routes the request.
func (d *downstream) onRequestBody(ctx context.Context, body []byte) *extprocv3.ProcessingResponse {
	if d.pass || d.op == llm.OpUnknown {
		d.passThrough("path")
		return requestBodyReply(nil)
	}
	d.body = body
	if reply := d.runRequestStages(ctx); reply != nil {
		return reply
	}
	return d.forward()
}

// rejected ends the exchange with r, or lets it go on when r is nil.
func (d *downstream) rejected(r *rejection) *extprocv3.ProcessingResponse {
	if r == nil {
		return nil
	}
	return d.rejectWith(r)
}

// parseStage enforces the body limit and parses the body once; every later
// stage works on d.req.
func (d *downstream) parseStage(context.Context) *extprocv3.ProcessingResponse {
	if limit := d.rt.cfg.Listen.MaxBodyBytes; limit > 0 && int64(len(d.body)) > limit {
		return d.rejectWith(reject(413, llm.TypeInvalidRequest, llm.CodeTooLarge, "too_large",
			fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", len(d.body), limit)))
	}
	req, err := llm.ParseRequest(d.op, d.body)
	if err != nil {
		code := "invalid_request"
		if errors.Is(err, llm.ErrInvalidJSON) || errors.Is(err, llm.ErrInvalidUTF8) || errors.Is(err, llm.ErrEmptyBody) ||
			errors.Is(err, llm.ErrDuplicateKey) || errors.Is(err, llm.ErrTooDeep) {
			code = llm.CodeInvalidJSON
		}
		return d.rejectWith(reject(400, llm.TypeInvalidRequest, code, "bad_request", err.Error()))
	}
	d.req = req
	return nil
}

func (d *downstream) promptStage(context.Context) *extprocv3.ProcessingResponse {
	return d.rejected(d.applyPrompt())
}

func (d *downstream) complexityStage(context.Context) *extprocv3.ProcessingResponse {
	return d.rejected(d.routeComplexity())
}

// routeStage applies the tier's (or the virtual key's) allow-list and the
// canaries to the body's model and resolves the alias to its targets.
func (d *downstream) routeStage(context.Context) *extprocv3.ProcessingResponse {
	rt := d.rt
	alias := d.req.Model
	if rej := d.allowModel(alias); rej != nil {
		return d.rejectWith(rej)
	}
	alias, _ = rt.policy.route(alias, d.requestID, d.id.Tenant)
	m, ok := rt.cfg.Models[alias]
	if !ok {
		return d.rejectWith(reject(404, llm.TypeInvalidRequest, llm.CodeModelNotFound, "model_not_found",
			fmt.Sprintf("The model '%s' does not exist or you do not have access to it.", truncate(d.req.Model, 128))))
	}
	d.alias, d.model = alias, m
	d.provider, d.target = m.Targets[0].Provider, m.Targets[0].Model
	return nil
}

func (d *downstream) guardInputStage(ctx context.Context) *extprocv3.ProcessingResponse {
	d.countUninspected()
	return d.rejected(d.guardInput(ctx))
}

// cacheLookupStage answers a hit itself; the provider is never asked.
func (d *downstream) cacheLookupStage(ctx context.Context) *extprocv3.ProcessingResponse {
	hit := d.cacheLookup(ctx)
	if hit == nil {
		return nil
	}
	d.outcome, d.cacheState = "cache_hit", "hit"
	d.phase = phaseDone
	return immediateBody(d.answerFromCache(hit))
}

// mutateStage makes the rewrites that change what the provider is asked.
func (d *downstream) mutateStage(context.Context) *extprocv3.ProcessingResponse {
	if d.model.MaxTokens > 0 {
		if err := d.req.CapMaxTokens(d.model.MaxTokens); err != nil {
			return d.rejectWith(reject(400, llm.TypeInvalidRequest, "invalid_request", "bad_request", err.Error()))
		}
	}
	if d.op != llm.OpEmbedding {
		added, err := d.req.EnsureUsageInStream()
		if err != nil {
			return d.rejectWith(reject(400, llm.TypeInvalidRequest, "invalid_request", "bad_request", err.Error()))
		}
		d.stripUse = added
	}
	return nil
}

func (d *downstream) rateLimitStage(ctx context.Context) *extprocv3.ProcessingResponse {
	return d.rejected(d.rateLimit(ctx))
}

func (d *downstream) budgetStage(ctx context.Context) *extprocv3.ProcessingResponse {
	return d.rejected(d.reserve(ctx))
}

// forward sends the admitted request on: the client's credentials removed,
// the (possibly rewritten) body, and the route in dynamic metadata.
func (d *downstream) forward() *extprocv3.ProcessingResponse {
	rt, req, body := d.rt, d.req, d.body
	var mut mutation
	// The client's key authenticated it to Tollgate; it must never reach a
	// provider (the upstream role adds the provider's own credential, or
	// this role does with credentials.inject: downstream, overwriting it).
	if rt.cfg.Credentials.Inject == "downstream" {
		if rej := d.injectDownstream(&mut); rej != nil {
			return d.rejectWith(rej)
		}
	}
	if _, set := mut.get("authorization"); !set {
		mut.removeHeader("authorization")
	}
	mut.removeHeader("x-api-key")
	mut.removeHeader("proxy-authorization")
	// The identity the wasm router set travels on as dynamic metadata
	// (tollgate.tenant), not as headers a provider would receive.
	mut.removeHeader(contract.HeaderTenant)
	mut.removeHeader(contract.HeaderTier)
	mut.removeHeader(contract.HeaderKeyID)
	// x-tollgate-route stays: platforms that route on headers (Istio,
	// Envoy Gateway) need it; the upstream role removes it.
	mut.setHeader(contract.HeaderRoute, d.alias)
	changed := len(req.Body) != len(body) || string(req.Body) != string(body)
	if changed && d.headers.get("content-length") != "" {
		mut.setHeader("content-length", strconv.Itoa(len(req.Body)))
	}
	c := common(&mut, req.Body, changed)
	c.ClearRouteCache = true
	d.forwarded = true
	reply := requestBodyReply(c)
	reply.DynamicMetadata = routeMetadata(d.alias, d.id.Tenant, d.keyAccount())
	return reply
}

// reserve holds the worst-case cost of the request against the tenant's
// budget: estimated prompt tokens plus the output cap, at the price of the
// most expensive target the request may fall back to.
func (d *downstream) reserve(ctx context.Context) *rejection {
	if d.s.budgets == nil {
		return nil
	}
	if !d.budgetCapped() {
		return nil // no cap: nothing to reserve, and no ledger round trip
	}
	prompt := meter.EstimateTokens(d.req.PromptText())
	out := d.req.MaxTokens
	var worst meter.Money
	for _, tg := range d.model.Targets {
		price, ok := d.rt.price(tg.Provider, tg.Model, d.s.now())
		if !ok {
			continue
		}
		o := out
		if o == 0 {
			o = d.rt.maxOutput(tg.Provider, tg.Model)
		}
		if o == 0 {
			o = defaultOutputReservation
		}
		if d.op == llm.OpEmbedding {
			o = 0
		}
		worst = max(worst, meter.WorstCase(price, prompt, o, d.req.N))
	}
	hold, err := d.reserveBudget(ctx, worst, d.s.reservationID(d.requestID))
	if err == nil {
		d.hold = hold
		return nil
	}
	var ex *meter.ExceededError
	if errors.As(err, &ex) {
		d.s.metrics.BudgetRejections.WithLabelValues(d.rt.tenantLabels.Value(d.id.Tenant), ex.Window).Inc()
		return d.budgetRejection(ex)
	}
	// The ledger failed: the configured failure mode decides.
	return d.dependencyFailed("budgets", d.rt.cfg.FailureMode.Budgets, "budget_unavailable", "spend ledger", err)
}

// dependencyFailed applies a layer's failure mode when the service it
// depends on fails: counted in tollgate_failures_total{layer,mode} and
// logged; open lets the request go on (nil), closed answers 503 with code,
// saying which service is unavailable and that nothing was sent.
func (d *downstream) dependencyFailed(layer string, mode config.Mode, code, service string, err error) *rejection {
	d.s.metrics.Failures.WithLabelValues(layer, string(mode)).Inc()
	d.s.log.Error(service+" unavailable", "layer", layer, "tenant", d.id.Tenant, "mode", mode, "err", err)
	if mode == config.Open {
		return nil
	}
	return reject(503, llm.TypeServer, code, code, "The "+service+" is unavailable; the request was not sent.")
}

// releaseHold gives back a budget hold whose request never reached a
// provider. It is the only way a hold ends other than settle.
func (d *downstream) releaseHold() {
	if d.hold == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.hold.Release(ctx); err != nil {
		d.s.metrics.Failures.WithLabelValues("budgets", string(d.rt.cfg.FailureMode.Budgets)).Inc()
		d.s.log.Error("releasing budget reservation failed", "tenant", d.id.Tenant, "err", err)
	}
	d.hold = nil
}

// budgetRejection explains a refused reservation so that a client (and an
// SDK's retry logic) can act on it: which cap, what was spent and held, what
// this request reserves and why. Retrying helps only when other requests'
// holds are what stands in the way (they settle within seconds); then the
// answer says so with Retry-After: 1. Otherwise it carries
// x-should-retry: false (the OpenAI SDKs' retry switch) and no Retry-After:
// a cap that resets tomorrow must not make a client sleep for hours.
func (d *downstream) budgetRejection(ex *meter.ExceededError) *rejection {
	why, field := "the prompt", "max_tokens"
	if d.op == llm.OpResponses {
		field = "max_output_tokens"
	}
	if d.req.MaxTokens > 0 {
		why = fmt.Sprintf("the prompt plus %s %d", field, d.req.MaxTokens)
	} else if d.op != llm.OpEmbedding {
		why = "the prompt plus the model's maximum output (set " + field + " to reserve less)"
	}
	if d.req.N > 1 {
		why += fmt.Sprintf(", for n=%d choices", d.req.N)
	}
	reset := "resets at " + windowReset(ex.Window, d.s.now()).Format(time.RFC3339)
	var msg string
	headers := map[string]string{"x-should-retry": "false"}
	switch {
	case ex.Requested > ex.Cap:
		msg = fmt.Sprintf("This request reserves %s USD (%s at the most expensive target's price), more than the tenant's whole %s cap of %s USD. Lower %s or raise the cap.",
			ex.Requested, why, ex.Window, ex.Cap, field)
	case ex.Spent+ex.Requested > ex.Cap:
		msg = fmt.Sprintf("Tenant budget exceeded: %s USD of the %s cap of %s USD is spent and this request reserves %s USD (%s). The window %s.",
			ex.Spent, ex.Window, ex.Cap, ex.Requested, why, reset)
	default:
		msg = fmt.Sprintf("Tenant budget busy: %s USD spent and %s USD held by requests in flight against the %s cap of %s USD leave no room for this request's %s USD (%s). Retry when they finish.",
			ex.Spent, ex.Outstanding, ex.Window, ex.Cap, ex.Requested, why)
		headers = map[string]string{"x-should-retry": "true", "retry-after": "1"}
	}
	r := reject(429, llm.TypeRateLimit, llm.CodeBudgetExceeded, "budget_exceeded", msg)
	r.headers = headers
	return r
}

// defaultOutputReservation is reserved for output when neither the request,
// the alias nor the catalog names an output cap.
const defaultOutputReservation = 4096

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// windowReset is when the exceeded window starts over (UTC).
func windowReset(window string, now time.Time) time.Time {
	now = now.UTC()
	if window == meter.WindowMonthly {
		return time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
}

// isModelsPath reports whether path is the OpenAI model list.
func isModelsPath(path string) bool {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path == "/v1/models"
}

// unsupportedAPIPath recognises the OpenAI and Anthropic API paths Tollgate
// does not serve, so that a client gets an honest 404 instead of Envoy's
// catch-all "not a configured alias". Other paths pass through untouched.
// POST /v1/responses is served (OperationForPath matches it first); the
// paths under it (retrieve, cancel, input_items of a stored response) are
// not.
func unsupportedAPIPath(path string) (string, bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for _, p := range []string{"/v1/responses", "/v1/messages", "/v1/assistants", "/v1/threads", "/v1/files",
		"/v1/batches", "/v1/uploads", "/v1/audio", "/v1/images", "/v1/moderations", "/v1/fine_tuning",
		"/v1/vector_stores", "/v1/realtime", "/v1/evals", "/v1/containers"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return p, true
		}
	}
	return "", false
}

// listModels answers GET /v1/models with the configured aliases (after
// authentication, like OpenAI's endpoint).
func (d *downstream) listModels() *extprocv3.ProcessingResponse {
	id, rej := d.rt.tenants.resolve(d.headers)
	if rej != nil {
		return d.rejectWith(rej)
	}
	d.id = id
	if m := d.headers.get(":method"); m != "GET" && m != "HEAD" {
		return d.rejectWith(reject(405, llm.TypeInvalidRequest, "method_not_allowed", "bad_request",
			"Only GET is supported on /v1/models."))
	}
	d.outcome, d.phase = "models", phaseDone
	var mut mutation
	mut.setHeader("content-type", "application/json")
	return immediateBody(200, d.rt.modelList, &mut)
}

// routeMetadata is the dynamic metadata routes match on: only this server
// can write it, so only admitted requests reach a provider route.
func routeMetadata(alias, tenant, account string) *structpb.Struct {
	f := map[string]*structpb.Value{
		contract.MetadataRoute:  structpb.NewStringValue(alias),
		contract.MetadataTenant: structpb.NewStringValue(tenant),
	}
	if account != "" {
		f[contract.MetadataAccount] = structpb.NewStringValue(account)
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		contract.MetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: f}),
	}}
}

// injectDownstream does the upstream role's work in the downstream role, for
// platforms whose clusters are not Tollgate's (Istio, Envoy Gateway): the
// alias's first target's model and provider credential.
func (d *downstream) injectDownstream(mut *mutation) *rejection {
	tg := d.model.Targets[0]
	if d.req.Model != tg.Model {
		if err := d.req.Set("model", tg.Model); err != nil {
			return reject(400, llm.TypeInvalidRequest, "invalid_request", "bad_request", err.Error())
		}
	}
	prov := d.rt.cfg.Providers[tg.Provider]
	header, value := "authorization", "Bearer "
	if prov.Azure() {
		// Azure OpenAI: the deployment path with api-version, the key in
		// api-key; forward removes the client's authorization.
		header, value = "api-key", ""
		if path := d.headers.get(":path"); path != "" {
			mut.setHeader(":path", azurePath(path, tg.DeploymentName(), prov.APIVersion))
		}
	}
	if !prov.Azure() || prov.APIKeyEnv == "" {
		mut.removeHeader("api-key") // a client's, never the provider's
	}
	if env := prov.APIKeyEnv; env != "" {
		key := d.rt.getenv(env)
		if key == "" {
			d.s.metrics.Failures.WithLabelValues("credentials", "closed").Inc()
			d.s.log.Error("provider credential variable is empty", "provider", tg.Provider, "env", env)
			return reject(503, llm.TypeServer, llm.CodeUpstreamFailure, "provider_error", "The provider credential is not configured.")
		}
		mut.setHeader(header, value+key)
	}
	return nil
}

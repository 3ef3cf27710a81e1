package envoysim

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

type direction int

const (
	dirRequest direction = iota
	dirResponse
)

// dirMode is one direction's processing state, as Envoy's
// ProcessorState::setProcessingModeInternal derives it from a ProcessingMode:
// headers are sent unless SKIP, trailers only if SEND.
type dirMode struct {
	sendHeaders  bool
	body         extprocfilterv3.ProcessingMode_BodySendMode
	sendTrailers bool
}

func modeFor(dir direction, m *extprocfilterv3.ProcessingMode) dirMode {
	if dir == dirRequest {
		return dirMode{
			sendHeaders:  m.GetRequestHeaderMode() != extprocfilterv3.ProcessingMode_SKIP,
			body:         m.GetRequestBodyMode(),
			sendTrailers: m.GetRequestTrailerMode() == extprocfilterv3.ProcessingMode_SEND,
		}
	}
	return dirMode{
		sendHeaders:  m.GetResponseHeaderMode() != extprocfilterv3.ProcessingMode_SKIP,
		body:         m.GetResponseBodyMode(),
		sendTrailers: m.GetResponseTrailerMode() == extprocfilterv3.ProcessingMode_SEND,
	}
}

// localReply is a response Envoy generates itself (sendLocalReply).
type localReply struct {
	status  int
	headers *headerMap
	body    []byte
	details string
}

// errClientGone aborts an exchange whose client went away.
var errClientGone = errors.New("client disconnected")

// phase names the message a reply must match.
type phase int

const (
	phaseRequestHeaders phase = iota
	phaseRequestBody
	phaseRequestTrailers
	phaseResponseHeaders
	phaseResponseBody
	phaseResponseTrailers
)

func (p phase) dir() direction {
	if p >= phaseResponseHeaders {
		return dirResponse
	}
	return dirRequest
}

func (p phase) isHeaders() bool { return p == phaseRequestHeaders || p == phaseResponseHeaders }

// matches reports whether resp has the oneof case a reply to p must have.
func (p phase) matches(resp *extprocv3.ProcessingResponse) bool {
	switch resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return p == phaseRequestHeaders
	case *extprocv3.ProcessingResponse_RequestBody:
		return p == phaseRequestBody
	case *extprocv3.ProcessingResponse_RequestTrailers:
		return p == phaseRequestTrailers
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return p == phaseResponseHeaders
	case *extprocv3.ProcessingResponse_ResponseBody:
		return p == phaseResponseBody
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		return p == phaseResponseTrailers
	}
	return false
}

// exchange is one HTTP request's walk through the filter.
type exchange struct {
	s   *Sim
	fc  *filterConf // the filter this walk runs: downstream, or the upstream filter of one attempt
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	rec Exchange

	side              sideStream
	complete          bool // processing_complete: the server is not consulted any more
	modes             [2]dirMode
	attrsSent         [2]bool
	timeoutOverridden bool

	reqH  *headerMap
	route *route      // nil: no route matched (or a direct response)
	entry *routeEntry // the matched route table entry (Resources), nil if none
	// routerStarted: the router's decodeHeaders ran (the route is final).
	routerStarted bool
	// headersSeen: this filter received the headers of a direction (SEND);
	// without them, header mutations in body replies are dropped
	// (processor_state.cc processHeaderMutationIfAvailable).
	headersSeen [2]bool
	// hostMetadata is the filter_metadata of the host of the current (or
	// final) attempt, for xds.upstream_host_metadata attributes.
	hostMetadata map[string]*structpb.Struct
	// routeCleared: an honoured clear_route_cache emptied the route cache;
	// the route is recomputed when the router asks for it (refreshRoute).
	routeCleared bool
	clusterName  string // xds.cluster_name
	dynMeta      map[string]*structpb.Struct
	clientErr    error
}

func newExchange(ctx context.Context, s *Sim, fc *filterConf, w http.ResponseWriter, r *http.Request) *exchange {
	ex := &exchange{s: s, fc: fc, w: w, r: r, ctx: ctx}
	ex.side.fc = fc
	pm := fc.filter.GetProcessingMode()
	ex.modes[dirRequest] = modeFor(dirRequest, pm)
	ex.modes[dirResponse] = modeFor(dirResponse, pm)
	return ex
}

func (ex *exchange) finish() {
	ex.side.close()
	if len(ex.dynMeta) > 0 {
		md := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(ex.dynMeta))}
		for ns, st := range ex.dynMeta {
			md.Fields[ns] = structpb.NewStructValue(st)
		}
		ex.rec.DynamicMetadata = md
	}
	if ex.route != nil {
		ex.rec.Route = ex.route.name
	}
	if ex.s.cfg.OnExchange != nil {
		ex.s.cfg.OnExchange(ex.rec)
	}
}

// buildRequestHeaders converts the client request to an Envoy request header
// map: pseudo-headers first, then the regular headers lowercased, then the
// headers Envoy's connection manager adds (x-forwarded-proto, x-request-id
// when absent).
func (ex *exchange) buildRequestHeaders() {
	r := ex.r
	h := &headerMap{}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	h.add(":authority", r.Host)
	h.add(":path", r.URL.RequestURI())
	h.add(":method", r.Method)
	h.add(":scheme", scheme)
	hdr := r.Header.Clone()
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer"} {
		hdr.Del(k)
	}
	h.appendHTTPHeader(hdr)
	if !h.has("x-forwarded-proto") {
		h.add("x-forwarded-proto", scheme)
	}
	if v, ok := h.get("x-request-id"); !ok || v == "" {
		h.set("x-request-id", newUUID())
	}
	ex.reqH = h
	ex.rec.RequestID, _ = h.get("x-request-id")
}

// newUUID returns a random (version 4) UUID like Envoy's request id
// generator.
func newUUID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error on supported platforms.
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// pickRoute selects the route from the current dynamic metadata
// (MetadataRoutes) or request headers (Routes), like the connection
// manager's refreshCachedRoute.
func (ex *exchange) pickRoute() {
	ex.route, ex.entry = nil, nil
	switch {
	case ex.s.table != nil:
		ex.entry = ex.s.table.pick(ex.reqH, ex.dynMeta)
		if ex.entry != nil {
			ex.route = ex.entry.route
		}
	case ex.s.metaRoutes != nil:
		mr := ex.s.cfg.MetadataRoutes
		if v, ok := metadataString(ex.dynMeta, mr.Namespace, mr.Key); ok {
			ex.route = ex.s.metaRoutes[v]
		}
	case ex.s.cfg.Routes != nil:
		key, _ := ex.reqH.get(ex.s.cfg.RouteHeader)
		ex.route = ex.s.routes[key]
	default:
		ex.route = ex.s.defaultRoute
	}
	ex.clusterName = ""
	if ex.route != nil {
		ex.clusterName = ex.route.cluster
	}
}

// refreshRoute recomputes the route if the cache was cleared, as the
// router's route() call does after clearRouteCache: with the headers and
// dynamic metadata as they are when the request reaches the router.
func (ex *exchange) refreshRoute() {
	if ex.routeCleared && !ex.routerStarted {
		ex.routeCleared = false
		ex.pickRoute()
	}
}

// applyDynamicMetadata is Filter::setDynamicMetadata: each top-level field
// of the reply's dynamic_metadata whose name is in
// receiving_namespaces.untyped is merged (key by key, like
// StreamInfo::setDynamicMetadata) into the request's metadata; a
// non-Struct value merges nothing. Other namespaces are dropped.
func (ex *exchange) applyDynamicMetadata(resp *extprocv3.ProcessingResponse) {
	md := resp.GetDynamicMetadata()
	if md == nil {
		return
	}
	for ns, v := range md.GetFields() {
		if !ex.fc.receiving[ns] {
			ex.s.stats.metadataNamespaceDropped.Add(1)
			continue
		}
		if ex.dynMeta == nil {
			ex.dynMeta = make(map[string]*structpb.Struct)
		}
		dst, ok := ex.dynMeta[ns]
		if !ok {
			dst = &structpb.Struct{Fields: map[string]*structpb.Value{}}
			ex.dynMeta[ns] = dst
		}
		for k, fv := range v.GetStructValue().GetFields() {
			dst.Fields[k] = proto.Clone(fv).(*structpb.Value)
		}
	}
}

func (ex *exchange) attrContext(respH *headerMap) *attrContext {
	local := ""
	if a, ok := ex.r.Context().Value(http.LocalAddrContextKey).(interface{ String() string }); ok {
		local = a.String()
	}
	return &attrContext{
		reqHeaders:   ex.reqH,
		respHeaders:  respH,
		remoteAddr:   ex.r.RemoteAddr,
		localAddr:    local,
		clusterName:  ex.clusterName,
		protocolName: ex.r.Proto,
		hostMetadata: ex.hostMetadata,
		codeDetails:  ex.codeDetails(respH),
	}
}

// codeDetails is StreamInfo::responseCodeDetails for the response being
// processed: a local reply's details (sendLocalReply sets them), or
// "via_upstream", which the router sets when it accepts an upstream
// response (router.cc Filter::onUpstreamHeaders).
func (ex *exchange) codeDetails(respH *headerMap) string {
	switch {
	case respH == nil:
		return ""
	case ex.rec.LocalReply:
		return ex.rec.Details
	default:
		return "via_upstream"
	}
}

// newRequest builds a ProcessingRequest with the attributes of the
// direction if they were not sent yet (Filter::addAttributes is called for
// headers, body and trailers messages and sends once per direction).
func (ex *exchange) newRequest(dir direction, respH *headerMap) *extprocv3.ProcessingRequest {
	req := &extprocv3.ProcessingRequest{}
	exprs := ex.fc.filter.GetRequestAttributes()
	if dir == dirResponse {
		exprs = ex.fc.filter.GetResponseAttributes()
	}
	if len(exprs) > 0 && !ex.attrsSent[dir] {
		ex.attrsSent[dir] = true
		req.Attributes = map[string]*structpb.Struct{attributeKey: evalAttributes(exprs, ex.attrContext(respH))}
	}
	ex.addMetadataContext(req)
	return req
}

// addMetadataContext is Filter::addDynamicMetadata (ext_proc.cc): every
// headers, body and trailers message carries metadata_context with the
// request's dynamic metadata of each namespace in
// metadata_options.forwarding_namespaces.untyped (namespaces the request
// does not have are left out). Without forwarding namespaces nothing of
// the request's metadata reaches the server. The emulator has no
// connection metadata, the fallback Envoy reads next.
func (ex *exchange) addMetadataContext(req *extprocv3.ProcessingRequest) {
	md := &corev3.Metadata{}
	for _, ns := range ex.fc.filter.GetMetadataOptions().GetForwardingNamespaces().GetUntyped() {
		if st, ok := ex.dynMeta[ns]; ok {
			if md.FilterMetadata == nil {
				md.FilterMetadata = map[string]*structpb.Struct{}
			}
			md.FilterMetadata[ns] = proto.Clone(st).(*structpb.Struct)
		}
	}
	req.MetadataContext = md
}

// send opens the side stream if needed and sends req. The first message
// carries protocol_config.
func (ex *exchange) send(req *extprocv3.ProcessingRequest) *localReply {
	if ex.side.stream == nil {
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  ex.modes[dirRequest].body,
			ResponseBodyMode: ex.modes[dirResponse].body,
		}
		if err := ex.side.open(ex.ctx); err != nil {
			return ex.streamError(err)
		}
		ex.rec.StreamOpened = true
		ex.fc.stats.streamsStarted.Add(1)
	}
	ex.rec.Sent = append(ex.rec.Sent, req)
	if err := ex.side.send(req); err != nil {
		return ex.streamError(err)
	}
	ex.fc.stats.streamMsgsSent.Add(1)
	return nil
}

// stop marks processing complete and resets the side stream.
func (ex *exchange) stop() {
	ex.complete = true
	ex.side.close()
}

// streamError handles a gRPC error: 500 (or status_on_error) when
// failure_mode_allow is false, otherwise continue without the server.
func (ex *exchange) streamError(err error) *localReply {
	if ex.ctx.Err() != nil {
		ex.clientErr = errClientGone
		ex.stop()
		return &localReply{}
	}
	ex.fc.stats.streamsFailed.Add(1)
	ex.stop()
	if ex.fc.filter.GetFailureModeAllow() {
		ex.fc.stats.failureModeAllowed.Add(1)
		return nil
	}
	code := http.StatusInternalServerError
	if c := int(ex.fc.filter.GetStatusOnError().GetCode()); c >= 200 {
		code = c
	}
	return &localReply{status: code, details: "ext_proc_error_gRPC_error_" + strconv.Itoa(int(status.Code(err)))}
}

// waitResult is the outcome of waiting for a reply.
type waitResult struct {
	resp *extprocv3.ProcessingResponse // the matching reply (or immediate_response); nil: continue unmodified
	lr   *localReply                   // a local reply ends the exchange
}

// handleRecv classifies one received message for phase p. done=false means
// keep waiting (an accepted override_message_timeout); newTimeout is then
// the restarted timer duration (0: keep the current timer).
func (ex *exchange) handleRecv(rr recvResult, p phase) (wr waitResult, done bool, newTimeout time.Duration) {
	if rr.err != nil {
		if errors.Is(rr.err, io.EOF) {
			// Server closed the stream with OK: continue unmodified, no more messages.
			ex.fc.stats.streamsClosed.Add(1)
			ex.stop()
			return waitResult{}, true, 0
		}
		return waitResult{lr: ex.streamError(rr.err)}, true, 0
	}
	resp := rr.resp
	if ex.s.cfg.OnReceive != nil {
		ex.s.cfg.OnReceive(resp)
	}
	ex.rec.Received = append(ex.rec.Received, resp)
	ex.fc.stats.streamMsgsReceived.Add(1)
	if omt := resp.GetOverrideMessageTimeout(); omt != nil {
		// Envoy ignores every other field of such a message.
		d := omt.AsDuration()
		if ex.fc.maxMsgTimeout > 0 && !ex.timeoutOverridden && d >= time.Millisecond && d <= ex.fc.maxMsgTimeout {
			ex.timeoutOverridden = true
			ex.fc.stats.overrideMessageTimeoutAccepted.Add(1)
			return waitResult{}, false, d
		}
		ex.fc.stats.overrideMessageTimeoutIgnored.Add(1)
		return waitResult{}, false, 0
	}
	_, immediate := resp.GetResponse().(*extprocv3.ProcessingResponse_ImmediateResponse)
	// onReceiveMessage writes the reply's dynamic metadata before the
	// handle*Response call that applies mutations and clears the route
	// cache, and also for a known reply case that turns out spurious.
	if (resp.GetResponse() != nil && !immediate) || (immediate && !ex.fc.filter.GetDisableImmediateResponse()) {
		ex.applyDynamicMetadata(resp)
	}
	if p.matches(resp) || (immediate && !ex.fc.filter.GetDisableImmediateResponse()) {
		return waitResult{resp: resp}, true, 0
	}
	return waitResult{lr: ex.spurious()}, true, 0
}

// spurious handles a reply that does not match the awaited message.
func (ex *exchange) spurious() *localReply {
	ex.fc.stats.spuriousMsgsReceived.Add(1)
	ex.stop()
	if ex.s.cfg.Legacy || ex.fc.filter.GetFailureModeAllow() {
		return nil
	}
	return &localReply{status: http.StatusInternalServerError, details: "ext_proc_error_spurious_message"}
}

// timeout handles an expired message_timeout.
func (ex *exchange) timeout() *localReply {
	ex.fc.stats.messageTimeouts.Add(1)
	ex.stop()
	if ex.fc.filter.GetFailureModeAllow() {
		ex.fc.stats.failureModeAllowed.Add(1)
		return nil
	}
	return &localReply{status: http.StatusGatewayTimeout, details: "ext_proc_error_per-message_timeout_exceeded"}
}

// roundTrip sends req and waits for the reply to phase p.
func (ex *exchange) roundTrip(req *extprocv3.ProcessingRequest, p phase) waitResult {
	if lr := ex.send(req); lr != nil || ex.complete {
		return waitResult{lr: lr}
	}
	ex.timeoutOverridden = false
	timerC, stopTimer := ex.s.cfg.Clock.Timer(ex.fc.messageTimeout)
	defer func() { stopTimer() }()
	for {
		select {
		case rr := <-ex.side.recv:
			wr, done, d := ex.handleRecv(rr, p)
			if done {
				return wr
			}
			if d > 0 {
				stopTimer()
				timerC, stopTimer = ex.s.cfg.Clock.Timer(d)
			}
		case <-timerC:
			return waitResult{lr: ex.timeout()}
		case <-ex.ctx.Done():
			ex.clientErr = errClientGone
			ex.stop()
			return waitResult{lr: &localReply{}}
		}
	}
}

func (ex *exchange) mutationParams(replacing, removeCL bool) mutationParams {
	return mutationParams{
		checker:          ex.fc.checker,
		maxHeadersCount:  ex.s.cfg.MaxHeadersCount,
		replacingMessage: replacing,
		removeCL:         removeCL,
		rejected:         func() { ex.fc.stats.rejectedHeaderMutations.Add(1) },
	}
}

// mutationFailure turns a mutation error into Envoy's 500 local reply; the
// details are the error message with spaces replaced, as
// %RESPONSE_CODE_DETAILS% shows them.
func (ex *exchange) mutationFailure(err error) *localReply {
	ex.stop()
	return &localReply{status: http.StatusInternalServerError, details: strings.ReplaceAll(err.Error(), " ", "_")}
}

// clearRouteCache applies clear_route_cache / route_cache_action for a
// CommonResponse (downstream filter).
func (ex *exchange) clearRouteCache(dir direction, cr *extprocv3.CommonResponse) {
	if dir == dirResponse {
		if cr.GetClearRouteCache() {
			ex.fc.stats.clearRouteCacheIgnored.Add(1)
		}
		return
	}
	if ex.fc.upstream {
		if cr.GetClearRouteCache() {
			ex.fc.stats.clearRouteCacheUpstreamIgnored.Add(1)
		}
		return
	}
	if cr.GetHeaderMutation() == nil {
		if cr.GetClearRouteCache() {
			ex.fc.stats.clearRouteCacheIgnored.Add(1)
		}
		return
	}
	action := ex.fc.filter.GetRouteCacheAction()
	if ex.fc.filter.GetDisableClearRouteCache() {
		action = extprocfilterv3.ExternalProcessor_RETAIN
	}
	switch action {
	case extprocfilterv3.ExternalProcessor_CLEAR:
		ex.routeCleared = true
	case extprocfilterv3.ExternalProcessor_RETAIN:
		if cr.GetClearRouteCache() {
			ex.fc.stats.clearRouteCacheDisabled.Add(1)
		}
	default:
		if cr.GetClearRouteCache() {
			ex.routeCleared = true
		}
	}
}

// applyModeOverride honours mode_override on a reply to a headers message
// when allow_mode_override is set (and allowed_override_modes permits it).
// Like Envoy's Filter::onReceiveMessage it sets both directions' state.
func (ex *exchange) applyModeOverride(p phase, resp *extprocv3.ProcessingResponse) {
	mo := resp.GetModeOverride()
	if mo == nil || !p.isHeaders() || !ex.fc.filter.GetAllowModeOverride() {
		return
	}
	if allowed := ex.fc.filter.GetAllowedOverrideModes(); len(allowed) > 0 {
		want := proto.Clone(mo).(*extprocfilterv3.ProcessingMode)
		want.RequestHeaderMode = extprocfilterv3.ProcessingMode_DEFAULT
		ok := false
		for _, a := range allowed {
			c := proto.Clone(a).(*extprocfilterv3.ProcessingMode)
			c.RequestHeaderMode = extprocfilterv3.ProcessingMode_DEFAULT
			if proto.Equal(c, want) {
				ok = true
				break
			}
		}
		if !ok {
			return
		}
	}
	if !supportedBodyMode(mo.GetRequestBodyMode()) || !supportedBodyMode(mo.GetResponseBodyMode()) {
		// BUFFERED_PARTIAL / FULL_DUPLEX_STREAMED are not modelled; treat the
		// override as not allowed.
		return
	}
	ex.modes[dirRequest] = modeFor(dirRequest, mo)
	ex.modes[dirResponse] = modeFor(dirResponse, mo)
}

// immediate converts an ImmediateResponse into the local reply Envoy sends:
// status defaults to 200 and codes below 200 become 200; header mutations
// are checked with the filter's rules but a disallowed header is dropped,
// never an error; pseudo-headers are dropped.
func (ex *exchange) immediate(ir *extprocv3.ImmediateResponse) *localReply {
	ex.stop()
	code := int(ir.GetStatus().GetCode())
	if code < 200 {
		code = http.StatusOK
	}
	h := &headerMap{}
	if m := ir.GetHeaders(); m != nil {
		checker := *ex.fc.checker
		checker.disallowIsError = false
		for _, sh := range m.GetSetHeaders() {
			hv := sh.GetHeader()
			name := strings.ToLower(hv.GetKey())
			// Like every header mutation, only raw_value is read (runtime
			// send_header_raw_value); a value-only header becomes empty
			// (envoyproxy/envoy#31555).
			value := string(hv.GetRawValue())
			if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
				ex.fc.stats.rejectedHeaderMutations.Add(1)
				continue
			}
			if !validHeaderName(name) || !validHeaderValue(value) || strings.HasPrefix(name, ":") {
				ex.fc.stats.rejectedHeaderMutations.Add(1)
				continue
			}
			if checker.check(opSet, name, value) != checkOK {
				ex.fc.stats.rejectedHeaderMutations.Add(1)
				continue
			}
			if sh.GetAppend().GetValue() {
				h.add(name, value)
			} else {
				h.set(name, value)
			}
		}
	}
	return &localReply{status: code, headers: h, body: ir.GetBody(), details: ir.GetDetails()}
}

// writeLocalReply sends a local reply to the client.
func (ex *exchange) writeLocalReply(lr *localReply) {
	if ex.clientErr != nil {
		return
	}
	ex.s.stats.localReplies.Add(1)
	ex.rec.LocalReply = true
	ex.rec.Details = lr.details
	ex.rec.Status = lr.status
	hdr := ex.w.Header()
	if lr.headers != nil {
		for k, v := range lr.headers.httpHeader() {
			hdr[k] = v
		}
	}
	if len(lr.body) > 0 && hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "text/plain")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(lr.body)))
	ex.w.WriteHeader(lr.status)
	// A write error means the client went away; nothing left to do.
	_, _ = ex.w.Write(lr.body)
}

// run drives the whole exchange.
func (ex *exchange) run() {
	ex.buildRequestHeaders()
	// The connection manager caches the route before the filter chain runs
	// (ConnectionManagerImpl::ActiveStream::decodeHeaders ->
	// refreshCachedRoute), with no dynamic metadata yet.
	ex.pickRoute()
	if lr, done := ex.headerFilters(); done {
		if lr != nil {
			ex.writeLocalReply(lr)
		}
		return
	}
	if lr := ex.requestPath(); lr != nil {
		ex.writeLocalReply(lr)
	}
}

// headerFilters runs the decoder filters before ext_proc (the wasm router)
// on the request headers, in chain order. A filter's local reply is encoded
// through the encoder filters from the start of the chain
// (filter_manager.cc commonEncodePrefix with no filter), so ext_proc's
// response phase sees it.
//
// done reports that a filter ended the request (lr is then a reply still to
// write, or nil when the reply went through the encoder path).
func (ex *exchange) headerFilters() (lr *localReply, done bool) {
	for _, f := range ex.s.header {
		out, reply, err := f.DecodeHeaders(ex.reqH.pairs())
		if err != nil {
			// A VM that fails is FAIL_CLOSED: 500 (proxy-wasm context.cc
			// onRequestHeaders after a failed VM).
			return ex.routerReply(&localReply{status: http.StatusInternalServerError, details: "wasm_fail_stream"}), true
		}
		if reply != nil {
			h := &headerMap{}
			for _, kv := range reply.Headers {
				h.add(strings.ToLower(kv[0]), kv[1])
			}
			return ex.routerReply(&localReply{status: reply.Status, headers: h, body: reply.Body, details: reply.Details}), true
		}
		if !slices.Equal(ex.reqH.pairs(), out) {
			// A proxy-wasm filter (ABI 0.2.1) that modifies request headers
			// clears the route cache (source/extensions/common/wasm/context.h
			// Context::onHeadersModified), so the route is recomputed with
			// the new headers when the router asks for it.
			ex.routeCleared = true
		}
		ex.reqH = headerMapFromPairs(out)
	}
	return nil, false
}

// readLimited reads all of r, failing when it exceeds limit bytes.
func readLimited(r io.Reader, limit int) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > limit {
		return nil, true, nil
	}
	return b, false, nil
}

// trailersOf returns the trailers that actually arrived (Go pre-declares
// announced trailer keys with nil values).
func trailersOf(t http.Header) *headerMap {
	var h *headerMap
	for k, vs := range t {
		for _, v := range vs {
			if h == nil {
				h = &headerMap{}
			}
			h.add(strings.ToLower(k), v)
		}
	}
	return h
}

// applyBodyMutation returns the new content of a buffer.
func applyBodyMutation(bm *extprocv3.BodyMutation, data []byte) []byte {
	switch m := bm.GetMutation().(type) {
	case *extprocv3.BodyMutation_Body:
		return m.Body
	case *extprocv3.BodyMutation_ClearBody:
		if m.ClearBody {
			return nil
		}
	}
	return data
}

// checkContentLength is ProcessorState::validateContentLength: in BUFFERED
// mode, a body mutation whose length differs from a present content-length
// header is an error.
func checkContentLength(h *headerMap, bm *extprocv3.BodyMutation) error {
	if bm == nil {
		return nil
	}
	v, ok := h.get("content-length")
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil
	}
	if n != len(bm.GetBody()) {
		return &mutationError{msg: "mismatch between content length and the length of the mutated body"}
	}
	return nil
}

// bodyState is the body of one direction as the filter holds it.
type bodyState struct {
	eos      bool      // end_of_stream was on the headers: no body
	buffered []byte    // body read completely (buffered or replaced)
	have     bool      // buffered is authoritative
	stream   io.Reader // unread body
	trailers *headerMap
}

// processHeaders runs a headers phase. It returns the local reply to send,
// if any, and whether CONTINUE_AND_REPLACE replaced the body.
func (ex *exchange) processHeaders(p phase, h *headerMap, respH *headerMap, eos bool, body *bodyState) *localReply {
	dir := p.dir()
	ex.headersSeen[dir] = true
	req := ex.newRequest(dir, respH)
	hh := &extprocv3.HttpHeaders{Headers: h.proto(), EndOfStream: eos}
	if dir == dirRequest {
		req.Request = &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: hh}
	} else {
		req.Request = &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hh}
	}
	wr := ex.roundTrip(req, p)
	if wr.lr != nil || wr.resp == nil {
		return wr.lr
	}
	if ir := wr.resp.GetImmediateResponse(); ir != nil {
		return ex.immediate(ir)
	}
	var hr *extprocv3.HeadersResponse
	if dir == dirRequest {
		hr = wr.resp.GetRequestHeaders()
	} else {
		hr = wr.resp.GetResponseHeaders()
	}
	cr := hr.GetResponse()
	replace := cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	// Mode override first, so content-length handling sees the new body mode.
	ex.applyModeOverride(p, wr.resp)
	streamed := ex.modes[dir].body == extprocfilterv3.ProcessingMode_STREAMED
	if err := applyHeaderMutation(cr.GetHeaderMutation(), h, ex.mutationParams(replace, replace || streamed)); err != nil {
		return ex.mutationFailure(err)
	}
	ex.clearRouteCache(dir, cr)
	if replace {
		body.buffered = applyBodyMutation(cr.GetBodyMutation(), nil)
		body.have = true
		if body.stream != nil {
			body.stream = nil
		}
		h.remove("content-length")
		ex.modes[dir].body = extprocfilterv3.ProcessingMode_NONE
		ex.modes[dir].sendTrailers = false
	}
	return nil
}

// processBufferedBody runs a BUFFERED body phase on body (already read).
func (ex *exchange) processBufferedBody(p phase, h *headerMap, respH *headerMap, body *bodyState) *localReply {
	dir := p.dir()
	req := ex.newRequest(dir, respH)
	hb := &extprocv3.HttpBody{Body: body.buffered, EndOfStream: body.trailers == nil}
	if dir == dirRequest {
		req.Request = &extprocv3.ProcessingRequest_RequestBody{RequestBody: hb}
	} else {
		req.Request = &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: hb}
	}
	wr := ex.roundTrip(req, p)
	if wr.lr != nil || wr.resp == nil {
		return wr.lr
	}
	if ir := wr.resp.GetImmediateResponse(); ir != nil {
		return ex.immediate(ir)
	}
	var br *extprocv3.BodyResponse
	if dir == dirRequest {
		br = wr.resp.GetRequestBody()
	} else {
		br = wr.resp.GetResponseBody()
	}
	cr := br.GetResponse()
	// Headers are still held in BUFFERED mode when they were sent to the
	// server: header mutations apply. When they were skipped the filter
	// never held them (they went on at decodeHeaders) and Envoy drops the
	// mutations ("Response had header mutations but headers aren't
	// available", processor_state.cc processHeaderMutationIfAvailable).
	if ex.headersSeen[dir] {
		if err := applyHeaderMutation(cr.GetHeaderMutation(), h, ex.mutationParams(false, false)); err != nil {
			return ex.mutationFailure(err)
		}
	} else if cr.GetHeaderMutation() != nil {
		ex.fc.stats.headerMutationsDropped.Add(1)
	}
	ex.clearRouteCache(dir, cr)
	if bm := cr.GetBodyMutation(); bm != nil {
		if err := checkContentLength(h, bm); err != nil {
			return ex.mutationFailure(err)
		}
		body.buffered = applyBodyMutation(bm, body.buffered)
	}
	return nil
}

// processTrailers runs a trailers phase.
func (ex *exchange) processTrailers(p phase, respH *headerMap, t *headerMap) *localReply {
	dir := p.dir()
	req := ex.newRequest(dir, respH)
	ht := &extprocv3.HttpTrailers{Trailers: t.proto()}
	if dir == dirRequest {
		req.Request = &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: ht}
	} else {
		req.Request = &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: ht}
	}
	wr := ex.roundTrip(req, p)
	if wr.lr != nil || wr.resp == nil {
		return wr.lr
	}
	if ir := wr.resp.GetImmediateResponse(); ir != nil {
		return ex.immediate(ir)
	}
	var tr *extprocv3.TrailersResponse
	if dir == dirRequest {
		tr = wr.resp.GetRequestTrailers()
	} else {
		tr = wr.resp.GetResponseTrailers()
	}
	if err := applyHeaderMutation(tr.GetHeaderMutation(), t, ex.mutationParams(false, false)); err != nil {
		return ex.mutationFailure(err)
	}
	return nil
}

// requestPath runs the request phases, forwards upstream and runs the
// response path. It returns a local reply to send, if any.
func (ex *exchange) requestPath() *localReply {
	r := ex.r
	body := &bodyState{eos: r.Body == nil || r.Body == http.NoBody}
	if !body.eos {
		body.stream = r.Body
	}
	if ex.modes[dirRequest].sendHeaders && !ex.complete {
		if lr := ex.processHeaders(phaseRequestHeaders, ex.reqH, nil, body.eos, body); lr != nil {
			return lr
		}
	} else {
		// request_header_mode SKIP: Filter::decodeHeaders returns Continue
		// (ext_proc.cc), so the headers go on to the router now, before
		// any body reaches the server: the router picks the route from the
		// cached one (no metadata yet) and starts the upstream request.
		// Envoy removes content-length for BUFFERED + SKIP
		// (processor_state.h shouldRemoveContentLength).
		if ex.modes[dirRequest].body == extprocfilterv3.ProcessingMode_BUFFERED && !ex.complete {
			ex.reqH.remove("content-length")
		}
		ex.refreshRoute()
		ex.routerStarted = true
		if ex.route == nil {
			return ex.noRoute()
		}
	}
	mode := ex.modes[dirRequest]
	switch {
	case body.have || body.eos || ex.complete:
	case mode.body == extprocfilterv3.ProcessingMode_BUFFERED:
		b, over, err := readLimited(body.stream, ex.s.cfg.BufferLimit)
		if err != nil {
			ex.clientErr = errClientGone
			return &localReply{}
		}
		if over {
			ex.stop()
			return &localReply{status: http.StatusRequestEntityTooLarge, body: []byte("Payload Too Large"), details: "request_payload_too_large"}
		}
		body.buffered, body.have, body.stream = b, true, nil
		body.trailers = trailersOf(r.Trailer)
		if lr := ex.processBufferedBody(phaseRequestBody, ex.reqH, nil, body); lr != nil {
			return lr
		}
		if body.trailers != nil && ex.modes[dirRequest].sendTrailers && !ex.complete {
			if lr := ex.processTrailers(phaseRequestTrailers, nil, body.trailers); lr != nil {
				return lr
			}
		}
	case mode.body == extprocfilterv3.ProcessingMode_STREAMED:
		ex.reqH.remove("content-length")
		return ex.forwardStreamed(body)
	}
	return ex.forward(body)
}

// upstreamRequest builds the request the router sends to base.
func (ex *exchange) upstreamRequest(ctx context.Context, base *url.URL, body io.Reader, contentLength int64) (*http.Request, error) {
	path, _ := ex.reqH.get(":path")
	method, _ := ex.reqH.get(":method")
	authority, _ := ex.reqH.get(":authority")
	target := strings.TrimSuffix(base.String(), "/") + path
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	req.Header = ex.reqH.httpHeader()
	req.Header.Del("Content-Length")
	req.Host = authority
	req.ContentLength = contentLength
	if body == nil {
		req.Body = nil
		req.ContentLength = 0
	}
	ex.rec.UpstreamURL = target
	return req, nil
}

// noRoute is the router's answer when no route matched: the configured
// direct response for MetadataRoutes (Tollgate's catch-all route), else
// Envoy's bare 404 (NR).
func (ex *exchange) noRoute() *localReply {
	if ex.entry != nil && ex.entry.direct != nil {
		d := *ex.entry.direct
		if d.headers != nil {
			d.headers = d.headers.clone()
		}
		ex.s.stats.directResponses.Add(1)
		return ex.routerReply(&d)
	}
	if ex.s.table != nil {
		// Router::Filter::decodeHeaders: no route => 404, empty body.
		return ex.routerReply(&localReply{status: http.StatusNotFound, details: "route_not_found"})
	}
	if mr := ex.s.cfg.MetadataRoutes; mr != nil {
		body := mr.NotFoundBody
		if body == "" {
			body = DefaultNotFoundBody
		}
		h := &headerMap{}
		h.set("content-type", "application/json")
		return ex.routerReply(&localReply{status: http.StatusNotFound, headers: h, body: []byte(body), details: "direct_response"})
	}
	return ex.routerReply(&localReply{status: http.StatusNotFound, details: "route_not_found"})
}

// contentLengthFor returns the framing Envoy's HTTP/1 codec would use: the
// content-length header if present, else chunked (-1).
func (ex *exchange) contentLengthFor(n int) int64 {
	if v, ok := ex.reqH.get("content-length"); ok {
		if cl, err := strconv.ParseInt(v, 10, 64); err == nil && int(cl) == n {
			return cl
		}
	}
	return -1
}

// routerReply is a local reply generated by the router (404, 503, 504): it
// is encoded through the filter chain, so the ext_proc response phases run.
func (ex *exchange) routerReply(lr *localReply) *localReply {
	ex.s.stats.localReplies.Add(1)
	ex.rec.LocalReply = true
	ex.rec.Details = lr.details
	hdr := http.Header{}
	if lr.headers != nil {
		hdr = lr.headers.httpHeader()
	}
	if len(lr.body) > 0 && hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "text/plain")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(lr.body)))
	return ex.responsePath(lr.status, hdr, io.NopCloser(bytes.NewReader(lr.body)), len(lr.body) == 0, func() http.Header { return nil })
}

// responseHeaderMap converts an upstream response's status and headers.
func responseHeaderMap(code int, header http.Header) *headerMap {
	h := &headerMap{}
	h.add(":status", strconv.Itoa(code))
	hdr := header.Clone()
	for _, k := range []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Trailer"} {
		hdr.Del(k)
	}
	h.appendHTTPHeader(hdr)
	return h
}

// responsePath runs the response phases and writes the client response.
func (ex *exchange) responsePath(code int, header http.Header, src io.Reader, eos bool, trailers func() http.Header) *localReply {
	return ex.responsePathH(responseHeaderMap(code, header), src, eos, trailers)
}

// responsePathH is responsePath for a response header map.
func (ex *exchange) responsePathH(h *headerMap, src io.Reader, eos bool, trailers func() http.Header) *localReply {
	body := &bodyState{eos: eos}
	if !eos {
		body.stream = src
	}
	if ex.modes[dirResponse].sendHeaders && !ex.complete {
		if lr := ex.processHeaders(phaseResponseHeaders, h, h, eos, body); lr != nil {
			return lr
		}
	}
	mode := ex.modes[dirResponse]
	switch {
	case body.have || body.eos || ex.complete:
	case mode.body == extprocfilterv3.ProcessingMode_BUFFERED:
		b, over, err := readLimited(body.stream, ex.s.cfg.BufferLimit)
		if err != nil {
			return &localReply{status: http.StatusBadGateway, details: "upstream_reset_after_response_started"}
		}
		if over {
			ex.stop()
			return &localReply{status: http.StatusInternalServerError, details: "response_payload_too_large"}
		}
		body.buffered, body.have, body.stream = b, true, nil
		body.trailers = trailersOf(trailers())
		if lr := ex.processBufferedBody(phaseResponseBody, h, h, body); lr != nil {
			return lr
		}
		if body.trailers != nil && ex.modes[dirResponse].sendTrailers && !ex.complete {
			if lr := ex.processTrailers(phaseResponseTrailers, h, body.trailers); lr != nil {
				return lr
			}
		}
	case mode.body == extprocfilterv3.ProcessingMode_STREAMED:
		h.remove("content-length")
		ex.writeResponseHeaders(h)
		ex.flush()
		lr, t, ok := ex.streamBody(phaseResponseBody, h, body.stream, trailers, ex.writeChunk)
		if lr != nil || !ok {
			// The response has started: Envoy resets the downstream stream.
			ex.abortResponse()
			return nil
		}
		ex.writeTrailers(t)
		return nil
	}
	if body.have {
		ex.writeResponseHeaders(h)
		// A write error means the client went away.
		_, _ = ex.w.Write(body.buffered)
		ex.writeTrailers(body.trailers)
		return nil
	}
	ex.writeResponseHeaders(h)
	if !body.eos {
		ex.copyThrough(body.stream)
		ex.writeTrailers(trailersOf(trailers()))
	}
	return nil
}

func (ex *exchange) writeResponseHeaders(h *headerMap) {
	code := http.StatusOK
	if s, ok := h.get(":status"); ok {
		if n, err := strconv.Atoi(s); err == nil {
			code = n
		}
	}
	hdr := ex.w.Header()
	for k, v := range h.httpHeader() {
		hdr[k] = v
	}
	ex.rec.Status = code
	ex.w.WriteHeader(code)
}

func (ex *exchange) writeTrailers(t *headerMap) {
	if t == nil {
		return
	}
	for k, v := range t.httpHeader() {
		ex.w.Header()[http.TrailerPrefix+k] = v
	}
}

func (ex *exchange) flush() {
	// Flush fails only when the writer cannot flush; nothing to do then.
	_ = http.NewResponseController(ex.w).Flush()
}

func (ex *exchange) writeChunk(b []byte) error {
	if len(b) > 0 {
		if _, err := ex.w.Write(b); err != nil {
			return err
		}
	}
	ex.flush()
	return nil
}

// copyThrough forwards an unprocessed body, flushing after every read.
func (ex *exchange) copyThrough(src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := ex.writeChunk(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

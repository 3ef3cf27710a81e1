package envoysim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// ErrUpstreamFilterStalled marks an attempt whose upstream ext_proc filter
// tried to send a local reply: Envoy ignores it in an upstream filter chain
// (Filter::sendImmediateResponse returns early when is_upstream) and the
// filter never resumes, so the attempt only ends by per_try_timeout or the
// client going away.
var ErrUpstreamFilterStalled = errors.New("upstream ext_proc filter stalled (local reply ignored upstream)")

// ErrPerTryTimeout marks an attempt that got no accepted response headers
// within the route's PerTryTimeout (Attempt.Err wraps it).
var ErrPerTryTimeout = errors.New("per_try_timeout")

// ErrContentLengthMismatch is an attempt not sent because its
// content-length header disagrees with its body (Attempt.Err wraps it).
var ErrContentLengthMismatch = errors.New("upstream request content-length does not match its body")

// forward runs the router stage for a request whose body is NONE, BUFFERED
// or replaced: one attempt per try, target i for attempt i, retried under
// the route's retry policy until response headers are accepted; then the
// response path.
func (ex *exchange) forward(body *bodyState) *localReply {
	ex.refreshRoute()
	ex.routerStarted = true
	rt := ex.route
	if rt == nil {
		return ex.noRoute()
	}
	upFilter := ex.upstreamFilter(rt)
	replayable := true
	var payload []byte
	var stream io.Reader
	switch {
	case body.have:
		payload = body.buffered
	case body.eos:
	case rt.retries > 0 || upFilter != nil:
		// The router buffers the body to replay it (retry shadow buffer);
		// the upstream filter's BUFFERED mode needs it whole too.
		b, over, err := readLimited(body.stream, ex.s.cfg.BufferLimit)
		if err != nil {
			ex.clientErr = errClientGone
			return &localReply{}
		}
		if over {
			if upFilter != nil {
				return &localReply{status: http.StatusRequestEntityTooLarge, body: []byte("Payload Too Large"), details: "request_payload_too_large"}
			}
			// Over the retry buffer: Envoy sends it once, without retries.
			stream, replayable = io.MultiReader(bytes.NewReader(b), body.stream), false
			break
		}
		payload = b
	default:
		stream, replayable = body.stream, false
	}
	hasBody := !body.eos || len(payload) > 0
	var retrying func()
	for i := 0; ; i++ {
		tg := rt.targets[0]
		if rt.prevPriorities {
			tg = rt.targets[i%len(rt.targets)]
		}
		res := ex.attempt(rt, upFilter, tg, payload, stream, hasBody, body.have || payload != nil, body.trailers)
		if retrying != nil {
			retrying()
		}
		if res.clientGone {
			res.release()
			ex.rec.Attempts = append(ex.rec.Attempts, res.att)
			ex.clientErr = errClientGone
			return &localReply{}
		}
		if res.local != nil {
			// Envoy >= 1.36: the upstream filter's local reply is the
			// attempt's response, final, never retried.
			ex.rec.Attempts = append(ex.rec.Attempts, res.att)
			res.release()
			return ex.routerReply(res.local)
		}
		var retriable bool
		if res.fail != failNone {
			retriable = rt.retriableFailure(res.fail)
		} else {
			retriable = rt.retriableStatus(res.att.Status)
		}
		if retriable && replayable && i < rt.retries {
			if release, ok := rt.acquireRetry(); ok {
				retrying = release
				res.att.Retried = true
				ex.rec.Attempts = append(ex.rec.Attempts, res.att)
				res.release()
				ex.s.stats.upstreamRetries.Add(1)
				continue
			}
			// RetryStateImpl::shouldRetry: the route cluster's retries
			// resource is full (upstream_rq_retry_overflow): no retry.
			ex.s.stats.upstreamRetryOverflow.Add(1)
		} else if retriable && rt.retries > 0 {
			ex.s.stats.upstreamRetriesExhausted.Add(1)
		}
		ex.rec.Attempts = append(ex.rec.Attempts, res.att)
		defer res.release()
		switch res.fail {
		case failConnect:
			return ex.routerReply(&localReply{
				status:  http.StatusServiceUnavailable,
				body:    []byte("upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
				details: "upstream_reset_before_response_started{connection_failure}",
			})
		case failReset:
			return ex.routerReply(&localReply{
				status:  http.StatusServiceUnavailable,
				body:    []byte("upstream connect error or disconnect/reset before headers. reset reason: connection termination"),
				details: "upstream_reset_before_response_started{connection_termination}",
			})
		case failPerTryTimeout:
			return ex.routerReply(&localReply{
				status:  http.StatusGatewayTimeout,
				body:    []byte("upstream request timeout"),
				details: "upstream_per_try_timeout",
			})
		}
		resp := res.resp
		return ex.responsePathH(res.h, res.src, res.eos, func() http.Header { return resp.Trailer })
	}
}

// attemptResult is the outcome of one attempt up to the router's
// retry decision.
type attemptResult struct {
	att        Attempt
	fail       failureKind
	clientGone bool
	local      *localReply    // the upstream filter's local reply (final)
	resp       *http.Response // response headers received
	h          *headerMap     // response headers after the upstream filter
	src        io.Reader      // response body
	eos        bool           // no response body
	cancel     context.CancelFunc
}

// release ends the attempt: closes the response body and cancels its context.
func (r *attemptResult) release() {
	if r.resp != nil {
		r.resp.Body.Close()
	}
	if r.cancel != nil {
		r.cancel()
	}
}

// upstreamFilter is the ext_proc filter of the route's cluster's upstream
// filter chain (Config.UpstreamFilter for routes not built from resources).
func (ex *exchange) upstreamFilter(rt *route) *filterConf {
	if rt.upFilter != nil {
		return rt.upFilter
	}
	if ex.s.table != nil {
		return nil
	}
	return ex.s.up
}

// acquireRetry takes one unit of the route cluster's retries resource; the
// returned release gives it back when the retried attempt ends.
func (rt *route) acquireRetry() (release func(), ok bool) {
	if rt.maxRetries <= 0 || rt.activeRetries == nil {
		return func() {}, true
	}
	if rt.activeRetries.Add(1) > int64(rt.maxRetries) {
		rt.activeRetries.Add(-1)
		return nil, false
	}
	return func() { rt.activeRetries.Add(-1) }, true
}

// perTryTimer cancels an attempt when per_try_timeout expires before the
// router accepts the response headers.
type perTryTimer struct {
	mu      sync.Mutex
	fired   bool
	stopped bool
	done    chan struct{}
	stopT   func()
}

func (ex *exchange) startPerTry(rt *route, cancel context.CancelFunc) *perTryTimer {
	pt := &perTryTimer{done: make(chan struct{}), stopT: func() {}}
	if rt.perTry <= 0 {
		return pt
	}
	c, stop := ex.s.cfg.Clock.Timer(rt.perTry)
	pt.stopT = stop
	go func() {
		select {
		case <-c:
			pt.mu.Lock()
			if !pt.stopped {
				pt.fired = true
				cancel()
			}
			pt.mu.Unlock()
		case <-pt.done:
		}
	}()
	return pt
}

// stop disarms the timer and reports whether it had already fired.
func (pt *perTryTimer) stop() bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if !pt.stopped {
		pt.stopped = true
		close(pt.done)
		pt.stopT()
	}
	return pt.fired
}

// attempt sends one try to tg: the upstream filter's request phases (a new
// side stream), the upstream call, the upstream filter's response phases.
// The request headers are the exchange's own map, as in Envoy, where the
// upstream filter chain decodes the router's downstream header map
// (UpstreamRequest::acceptHeadersFromRouter), so the upstream filter's
// header mutations stay for later attempts; the body is a fresh copy per
// attempt (Router::Filter::doRetry copies the decoding buffer).
func (ex *exchange) attempt(rt *route, upFilter *filterConf, tg target, payload []byte, stream io.Reader, hasBody, buffered bool, trailers *headerMap) (res attemptResult) {
	res.att = Attempt{Cluster: tg.cluster}
	// The downstream stream info's upstream info is this attempt's
	// (UpstreamRequest::UpstreamRequest sets it on the router's callbacks).
	ex.hostMetadata = tg.metadata
	ctx, cancel := context.WithCancel(ex.ctx)
	res.cancel = cancel
	pt := ex.startPerTry(rt, cancel)
	var up *exchange
	defer func() {
		if up != nil {
			up.side.close()
			res.att.StreamOpened = up.rec.StreamOpened
			res.att.Sent = up.rec.Sent
			res.att.Received = up.rec.Received
		}
		pt.stop()
	}()
	// ended classifies an attempt interrupted by its context.
	ended := func() attemptResult {
		if pt.stop() {
			res.fail = failPerTryTimeout
			res.att.Err = ErrPerTryTimeout
		} else {
			res.clientGone = true
			res.att.Err = errClientGone
		}
		if res.resp != nil {
			res.resp.Body.Close()
			res.resp = nil
		}
		return res
	}
	stall := func(lr *localReply) attemptResult {
		if !ex.s.cfg.Legacy {
			// Since Envoy 1.36 (envoyproxy/envoy#41231) the upstream
			// filter's local reply (immediate_response, or its own error
			// reply) reaches the router as the attempt's response.
			ex.s.upStats.upstreamLocalReplies.Add(1)
			if res.resp != nil {
				res.resp.Body.Close()
				res.resp = nil
			}
			res.local = lr
			return res
		}
		ex.s.upStats.sendImmediateRespUpstreamIgnored.Add(1)
		if res.resp != nil {
			res.resp.Body.Close()
			res.resp = nil
		}
		<-ctx.Done()
		r := ended()
		if r.fail == failPerTryTimeout {
			r.att.Err = fmt.Errorf("%w: %w", ErrPerTryTimeout, ErrUpstreamFilterStalled)
		}
		return r
	}

	body := &bodyState{eos: !hasBody}
	if buffered {
		body.buffered, body.have = bytes.Clone(payload), true
	} else if hasBody {
		body.stream = stream
	}
	if upFilter != nil {
		up = newExchange(ctx, ex.s, upFilter, nil, ex.r)
		up.reqH = ex.reqH
		// xds.cluster_name is the router's cluster on every attempt
		// (UpstreamRequest copies the downstream upstreamClusterInfo); the
		// host is this attempt's.
		up.clusterName = rt.cluster
		up.hostMetadata = tg.metadata
		up.rec.RequestID = ex.rec.RequestID
		// The upstream filter chain's stream info is the router's downstream
		// one (upstream_request.cc UpstreamRequestFilterManagerCallbacks::
		// streamInfo returns parent_.callbacks()->streamInfo()), so upstream
		// filters read and write the request's dynamic metadata.
		if ex.dynMeta == nil {
			ex.dynMeta = make(map[string]*structpb.Struct)
		}
		up.dynMeta = ex.dynMeta
		if !up.modes[dirRequest].sendHeaders && up.modes[dirRequest].body == extprocfilterv3.ProcessingMode_BUFFERED {
			// SKIP + BUFFERED: the headers go on at decodeHeaders without
			// content-length (processor_state.h shouldRemoveContentLength).
			ex.reqH.remove("content-length")
		}
		if up.modes[dirRequest].sendHeaders && !up.complete {
			if lr := up.processHeaders(phaseRequestHeaders, ex.reqH, nil, body.eos, body); lr != nil {
				if up.clientErr != nil || ctx.Err() != nil {
					return ended()
				}
				return stall(lr)
			}
		}
		if !body.eos && body.have && up.modes[dirRequest].body == extprocfilterv3.ProcessingMode_BUFFERED && !up.complete {
			if lr := up.processBufferedBody(phaseRequestBody, ex.reqH, nil, body); lr != nil {
				if up.clientErr != nil || ctx.Err() != nil {
					return ended()
				}
				return stall(lr)
			}
			if body.trailers != nil && up.modes[dirRequest].sendTrailers && !up.complete {
				if lr := up.processTrailers(phaseRequestTrailers, nil, body.trailers); lr != nil {
					if up.clientErr != nil || ctx.Err() != nil {
						return ended()
					}
					return stall(lr)
				}
			}
		}
	}

	if body.have {
		if v, ok := ex.reqH.get("content-length"); ok {
			if n, err := strconv.Atoi(v); err == nil && n != len(body.buffered) {
				// Envoy's HTTP/1 codec would send this header as is with a
				// body of another length: a broken request. Fail the attempt
				// loudly instead of sending it chunked.
				ex.s.stats.upstreamContentLengthMismatch.Add(1)
				res.fail = failReset
				res.att.Err = fmt.Errorf("%w: content-length %d, body %d bytes", ErrContentLengthMismatch, n, len(body.buffered))
				return res
			}
		}
	}
	var rd io.Reader
	var cl int64
	switch {
	case body.have:
		if len(body.buffered) > 0 || !body.eos {
			rd = bytes.NewReader(body.buffered)
			cl = ex.contentLengthFor(len(body.buffered))
			if len(body.buffered) == 0 {
				cl = 0
			}
			res.att.RequestBody = body.buffered
		}
	case !body.eos:
		rd = body.stream
		cl = -1
		if v, ok := ex.reqH.get("content-length"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				cl = n
			}
		}
	}
	req, err := ex.upstreamRequest(ctx, tg.url, rd, cl)
	if err != nil {
		res.fail, res.att.Err = failReset, err
		return res
	}
	if trailers != nil && body.have {
		req.Trailer = trailers.httpHeader()
		req.ContentLength = -1
	}
	res.att.URL = req.URL.String()
	res.att.RequestHeaders = req.Header.Clone()
	ex.rec.UpstreamCalled = true
	ex.s.stats.upstreamRequests.Add(1)
	resp, err := ex.s.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ended()
		}
		res.att.Err = err
		res.fail = failReset
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			res.fail = failConnect
		}
		return res
	}
	res.resp = resp
	res.h = responseHeaderMap(resp.StatusCode, resp.Header)
	res.eos = resp.ContentLength == 0 || req.Method == http.MethodHead
	res.src = resp.Body
	if up != nil && !up.complete {
		// Upstream filters see the response before the router does.
		rb := &bodyState{eos: res.eos}
		if !res.eos {
			rb.stream = resp.Body
		}
		if up.modes[dirResponse].sendHeaders {
			if lr := up.processHeaders(phaseResponseHeaders, res.h, res.h, res.eos, rb); lr != nil {
				if up.clientErr != nil || ctx.Err() != nil {
					return ended()
				}
				return stall(lr)
			}
		}
		if !rb.eos && !rb.have && !up.complete && up.modes[dirResponse].body == extprocfilterv3.ProcessingMode_BUFFERED {
			b, over, err := readLimited(rb.stream, ex.s.cfg.BufferLimit)
			switch {
			case err != nil && ctx.Err() != nil:
				return ended()
			case err != nil:
				res.fail, res.att.Err = failReset, err
				resp.Body.Close()
				res.resp = nil
				return res
			case over:
				return stall(&localReply{status: http.StatusInternalServerError, details: "response_payload_too_large"})
			}
			rb.buffered, rb.have, rb.stream = b, true, nil
			rb.trailers = trailersOf(resp.Trailer)
			if lr := up.processBufferedBody(phaseResponseBody, res.h, res.h, rb); lr != nil {
				if up.clientErr != nil || ctx.Err() != nil {
					return ended()
				}
				return stall(lr)
			}
		}
		if rb.have {
			res.src, res.eos = bytes.NewReader(rb.buffered), len(rb.buffered) == 0
			if !res.eos {
				res.h.remove("content-length")
				res.h.set("content-length", strconv.Itoa(len(rb.buffered)))
			}
		}
	}
	if pt.stop() {
		return ended()
	}
	res.att.Status = http.StatusOK
	if s, ok := res.h.get(":status"); ok {
		if n, err := strconv.Atoi(s); err == nil {
			res.att.Status = n
		}
	}
	return res
}

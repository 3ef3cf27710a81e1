package envoysim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// chunkRead is one read from a body source.
type chunkRead struct {
	data []byte
	err  error
}

// streamReadSize is the read size for STREAMED bodies; each read becomes
// one body message, so chunk boundaries follow the source's reads/flushes.
const streamReadSize = 16 << 10

// readChunks reads src until an error, one message per Read, until stop is
// closed.
func readChunks(src io.Reader, out chan<- chunkRead, stop <-chan struct{}) {
	for {
		buf := make([]byte, streamReadSize)
		n, err := src.Read(buf)
		select {
		case out <- chunkRead{data: buf[:n], err: err}:
		case <-stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// streamBody runs STREAMED processing for one direction, like Envoy's
// StreamedBodyCallback state: every read of src is sent as one body message
// without waiting for earlier replies (at most StreamWindow outstanding),
// replies are matched FIFO, and each chunk is released to sink, replaced by
// the reply's body mutation, when its reply arrives. Header mutations in
// the replies are ignored (headers are already gone). The last message has
// end_of_stream=true (it may be empty) unless trailers follow.
//
// It returns a local reply on failure, the trailers that arrived, and ok=false
// when the source or sink broke.
func (ex *exchange) streamBody(p phase, respH *headerMap, src io.Reader, trailersFn func() http.Header, sink func([]byte) error) (*localReply, *headerMap, bool) {
	dir := p.dir()
	reads := make(chan chunkRead)
	stopRead := make(chan struct{})
	defer close(stopRead)
	go readChunks(src, reads, stopRead)

	type pending struct {
		data []byte
	}
	var (
		queue     []pending
		srcDone   bool
		trailers  *headerMap
		timerC    <-chan time.Time
		stopTimer = func() {}
	)
	defer func() { stopTimer() }()
	restart := func(d time.Duration) {
		stopTimer()
		timerC, stopTimer = nil, func() {}
		if len(queue) > 0 {
			timerC, stopTimer = ex.s.cfg.Clock.Timer(d)
		}
	}
	finishSource := func(cr chunkRead) (bool, bool) {
		srcDone = true
		if !errors.Is(cr.err, io.EOF) {
			return false, false
		}
		trailers = trailersOf(trailersFn())
		return trailers == nil, true
	}

	for !srcDone || len(queue) > 0 {
		if ex.complete {
			// The server is no longer consulted: release queued chunks
			// unmodified, then pass the rest through.
			for _, q := range queue {
				if err := sink(q.data); err != nil {
					return nil, nil, false
				}
			}
			queue = nil
			for !srcDone {
				select {
				case cr := <-reads:
					if len(cr.data) > 0 {
						if err := sink(cr.data); err != nil {
							return nil, nil, false
						}
					}
					if cr.err != nil {
						if _, ok := finishSource(cr); !ok {
							return nil, nil, false
						}
					}
				case <-ex.ctx.Done():
					ex.clientErr = errClientGone
					return &localReply{}, nil, false
				}
			}
			return nil, trailers, true
		}
		var in <-chan chunkRead
		if !srcDone && len(queue) < ex.s.cfg.StreamWindow {
			in = reads
		}
		select {
		case cr := <-in:
			eos := false
			if cr.err != nil {
				var ok bool
				eos, ok = finishSource(cr)
				if !ok {
					return nil, nil, false
				}
			}
			if len(cr.data) == 0 && !eos {
				continue
			}
			req := ex.newRequest(dir, respH)
			hb := &extprocv3.HttpBody{Body: cr.data, EndOfStream: eos}
			if dir == dirRequest {
				req.Request = &extprocv3.ProcessingRequest_RequestBody{RequestBody: hb}
			} else {
				req.Request = &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: hb}
			}
			if lr := ex.send(req); lr != nil {
				return lr, nil, false
			}
			if ex.complete {
				if err := sink(cr.data); err != nil {
					return nil, nil, false
				}
				continue
			}
			queue = append(queue, pending{data: cr.data})
			ex.timeoutOverridden = false
			restart(ex.fc.messageTimeout)
		case rr := <-ex.side.recv:
			wr, done, d := ex.handleRecv(rr, p)
			if !done {
				if d > 0 {
					restart(d)
				}
				continue
			}
			if wr.lr != nil {
				return wr.lr, nil, false
			}
			if wr.resp == nil {
				continue // processing complete; the loop head flushes
			}
			if ir := wr.resp.GetImmediateResponse(); ir != nil {
				return ex.immediate(ir), nil, false
			}
			var cr *extprocv3.CommonResponse
			if dir == dirRequest {
				cr = wr.resp.GetRequestBody().GetResponse()
			} else {
				cr = wr.resp.GetResponseBody().GetResponse()
			}
			front := queue[0]
			queue = queue[1:]
			if err := sink(applyBodyMutation(cr.GetBodyMutation(), front.data)); err != nil {
				return nil, nil, false
			}
			restart(ex.fc.messageTimeout)
		case <-timerC:
			if lr := ex.timeout(); lr != nil {
				return lr, nil, false
			}
		case <-ex.ctx.Done():
			ex.clientErr = errClientGone
			ex.stop()
			return &localReply{}, nil, false
		}
	}
	if trailers != nil && ex.modes[dir].sendTrailers && !ex.complete {
		tp := phaseRequestTrailers
		if dir == dirResponse {
			tp = phaseResponseTrailers
		}
		if lr := ex.processTrailers(tp, respH, trailers); lr != nil {
			return lr, nil, false
		}
	}
	return nil, trailers, true
}

// forwardStreamed forwards the request while its body is processed in
// STREAMED mode: headers go upstream at once, each chunk when its reply
// arrives. Only the route's first target is tried (no retries), and the
// upstream filter is not modelled for streamed request bodies.
func (ex *exchange) forwardStreamed(body *bodyState) *localReply {
	ex.refreshRoute()
	if ex.route == nil {
		return ex.noRoute()
	}
	if ex.s.up != nil {
		ex.stop()
		return &localReply{status: http.StatusInternalServerError, details: "envoysim_upstream_filter_with_streamed_request_not_modelled"}
	}
	tg := ex.route.targets[0]
	pr, pw := io.Pipe()
	upCtx, cancel := context.WithCancel(ex.ctx)
	defer cancel()
	req, err := ex.upstreamRequest(upCtx, tg.url, pr, -1)
	if err != nil {
		return ex.routerReply(&localReply{status: http.StatusServiceUnavailable, details: "envoysim_bad_upstream_request"})
	}
	type result struct {
		resp *http.Response
		err  error
	}
	res := make(chan result, 1)
	ex.rec.UpstreamCalled = true
	ex.s.stats.upstreamRequests.Add(1)
	att := Attempt{Cluster: tg.cluster, URL: req.URL.String(), RequestHeaders: req.Header.Clone()}
	go func() {
		resp, err := ex.s.cfg.HTTPClient.Do(req)
		res <- result{resp: resp, err: err}
	}()
	sink := func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		_, err := pw.Write(b)
		return err
	}
	lr, _, ok := ex.streamBody(phaseRequestBody, nil, body.stream, func() http.Header { return ex.r.Trailer }, sink)
	if lr != nil || !ok {
		cancel()
		pw.CloseWithError(errors.New("envoysim: request aborted"))
		if out := <-res; out.resp != nil {
			out.resp.Body.Close()
		}
		if lr == nil {
			ex.clientErr = errClientGone
			return &localReply{}
		}
		return lr
	}
	pw.Close()
	out := <-res
	if out.err != nil {
		att.Err = out.err
		ex.rec.Attempts = append(ex.rec.Attempts, att)
		if ex.ctx.Err() != nil {
			ex.clientErr = errClientGone
			return &localReply{}
		}
		return ex.routerReply(&localReply{
			status:  http.StatusServiceUnavailable,
			body:    []byte("upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
			details: "upstream_reset_before_response_started{connection_failure}",
		})
	}
	defer out.resp.Body.Close()
	att.Status = out.resp.StatusCode
	ex.rec.Attempts = append(ex.rec.Attempts, att)
	return ex.responsePath(out.resp.StatusCode, out.resp.Header, out.resp.Body, out.resp.ContentLength == 0 || req.Method == http.MethodHead, func() http.Header { return out.resp.Trailer })
}

// abortResponse resets the downstream connection after the response has
// started (Envoy resets the stream when it cannot send a local reply).
func (ex *exchange) abortResponse() {
	conn, _, err := http.NewResponseController(ex.w).Hijack()
	if err != nil {
		return
	}
	// Closing a hijacked connection that is already broken fails harmlessly.
	_ = conn.Close()
}

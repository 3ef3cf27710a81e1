package extproc

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
)

// onResponseHeaders decides how much of the response the server needs:
// nothing for pass-through and errors, the buffered JSON body for metering,
// or the SSE stream chunk by chunk (mode_override to STREAMED).
func (d *downstream) onResponseHeaders(h *extprocv3.HttpHeaders, attrs *structpb.Struct) *extprocv3.ProcessingResponse {
	t := time.Now()
	defer d.stage(stageResponseHeaders, t)
	resp := fromHeaderMap(h.GetHeaders(), nil)
	d.status, _ = strconv.Atoi(resp.get(":status"))
	if !d.forwarded {
		d.phase = phaseDone
		return responseHeadersReply(nil, overrideNoBody)
	}
	// The host Envoy chose for the final attempt names the target that
	// served (its endpoint metadata, as a response attribute); a router
	// local reply has no host and keeps the alias's first target.
	if p, m := hostTarget(attrs); p != "" && m != "" {
		d.provider, d.target = p, m
	}
	var mut mutation
	mut.setHeader(contract.HeaderProvider, d.provider)
	mut.setHeader(contract.HeaderModel, d.target)
	if d.cacheState == "" {
		d.cacheState = "bypass" // cache off, or the request was not cacheable
	}
	mut.setHeader(contract.HeaderCache, d.cacheState)
	d.rateHeaders(&mut)
	d.compressionHeader(&mut)

	if d.status >= 300 || h.GetEndOfStream() {
		// Provider error (after Envoy's retries) or no body: nothing to
		// meter beyond the request; the body passes through untouched.
		// Providers do not charge for failed requests: settle at zero.
		d.outcome = "provider_error"
		if d.status < 300 {
			d.outcome = "ok"
		}
		d.usage, d.hasUsage = llm.Usage{}, true
		if d.cutAfterSending(attrs) {
			// The provider had the request; it bills the prompt.
			d.usage, d.hasUsage = d.estimateUsage(""), false
		}
		d.settle(context.Background())
		d.setGuardrailsHeader(&mut) // the output guard does not run on errors
		if d.status >= 400 && !h.GetEndOfStream() && !strings.HasPrefix(resp.get("content-type"), "application/json") {
			// Envoy's own local replies (no healthy upstream, connect
			// failure, timeout) are plain text: keep the body buffered and
			// replace it with an OpenAI-shaped error.
			d.phase = phaseRespHeaders
			d.rewriteError = true
			mut.setHeader("content-type", "application/json")
			return responseHeadersReply(common(&mut, nil, false), nil)
		}
		d.phase = phaseDone
		return responseHeadersReply(common(&mut, nil, false), overrideNoBody)
	}
	d.respHasCL = resp.get("content-length") != ""
	if strings.HasPrefix(resp.get("content-type"), "text/event-stream") {
		d.phase = phaseRespStreaming
		if d.rt.outGuard != nil {
			d.sg = newStreamGuard(d.rt.outGuard)
		}
		if d.creq != nil {
			if ok, _ := d.creq.Cacheable(); ok {
				d.acc = &llm.StreamAccumulator{}
			}
		}
		// Envoy removes content-length itself only for the body mode the
		// filter started with; after a mode_override to STREAMED the
		// chunks may change length, so the reply removes it
		// (ext_proc.cc encodeHeaders; mutation_utils.cc).
		mut.removeHeader("content-length")
		d.setGuardrailsHeader(&mut) // the input only: the answer has not been seen
		return responseHeadersReply(common(&mut, nil, false), overrideStreamed)
	}
	return responseHeadersReply(common(&mut, nil, false), nil)
}

// cutAfterSending reports whether Envoy answered with its own timeout after
// the request reached the provider, in a deployment without the upstream
// role (credentials.inject: downstream: Istio, Envoy Gateway), where nothing
// else bills it. Envoy starts the route and per-try timers once the request
// is on its way (the per-try timer at UpstreamRequest::onPoolReady), so a
// provider received it. With the upstream role, that role bills each
// timed-out attempt itself.
func (d *downstream) cutAfterSending(attrs *structpb.Struct) bool {
	if d.rt.cfg.Credentials.Inject != "downstream" {
		return false
	}
	switch valueString(attrs.GetFields()[contract.CodeDetailsAttribute]) {
	case "upstream_per_try_timeout", "upstream_response_timeout":
		return true
	}
	return false
}

// bufferedAnswer is the state of the buffered JSON response path: the
// provider's answer, what was parsed of it, and the reply being built.
type bufferedAnswer struct {
	body     []byte
	resp     *llm.Response
	parseErr error
	cost     meter.Money
	out      []byte // the answer the client gets (the output guard may redact it)
	mut      mutation
}

// onResponseBody runs responseStages on a complete JSON answer and replies
// with the cost header and the (possibly redacted) answer.
func (d *downstream) onResponseBody(ctx context.Context, body []byte) *extprocv3.ProcessingResponse {
	if d.rewriteError {
		return d.errorBody(body)
	}
	r := &bufferedAnswer{body: body, out: body}
	if reply := d.runResponseStages(ctx, r); reply != nil {
		return reply
	}
	changed := len(r.out) != len(body) || string(r.out) != string(body)
	if changed && d.respHasCL {
		r.mut.setHeader("content-length", strconv.Itoa(len(r.out)))
	}
	return responseBodyReply(common(&r.mut, r.out, changed))
}

// meterStage reads the usage (or estimates it), settles the budget hold and
// sets the cost headers.
func (d *downstream) meterStage(ctx context.Context, r *bufferedAnswer) *extprocv3.ProcessingResponse {
	parse := llm.ParseUsage // metering needs no completion text
	if d.rt.outGuard != nil {
		parse = llm.ParseResponse
	}
	r.resp, r.parseErr = parse(r.body)
	switch {
	case r.parseErr != nil:
		d.outcome = "provider_malformed"
		d.s.log.Warn("provider returned a malformed JSON body", "alias", d.alias, "provider", d.provider, "bytes", len(r.body))
		// A body cut mid-way is metered like a cut stream: the prompt
		// plus the completion text that did arrive, not the whole JSON
		// envelope (ids, roles, field names) as if it were output.
		d.usage = d.estimateUsage(partialCompletion(r.body))
	case r.resp.IsError:
		d.outcome = "provider_error"
		d.hasUsage = true // an error body costs nothing
	case r.resp.HasUsage:
		d.usage, d.hasUsage = r.resp.Usage, true
		d.outcome = "ok"
		d.respModel, d.fingerprint = r.resp.Model, r.resp.SystemFingerprint
	default:
		if full, err := llm.ParseResponse(r.body); err == nil {
			r.resp = full
		}
		var text strings.Builder
		for _, tx := range r.resp.Texts {
			text.WriteString(tx.Text)
		}
		d.usage = d.estimateUsage(text.String())
		d.outcome = "ok"
	}
	r.cost = d.settle(ctx)
	r.mut.setHeader(contract.HeaderCost, formatUSD(r.cost.USD()))
	if !d.hasUsage {
		r.mut.setHeader(contract.HeaderEstimated, "true")
	}
	return nil
}

// guardOutputStage redacts the answer or replaces it with a 400.
func (d *downstream) guardOutputStage(_ context.Context, r *bufferedAnswer) *extprocv3.ProcessingResponse {
	out, rej := d.guardOutput(r.body, r.resp)
	if rej != nil {
		d.outcome = "blocked_output"
		return immediate(rej)
	}
	r.out = out
	d.setGuardrailsHeader(&r.mut)
	return nil
}

// cacheStoreStage stores a clean 200 answer (the cache refuses the rest).
func (d *downstream) cacheStoreStage(ctx context.Context, r *bufferedAnswer) *extprocv3.ProcessingResponse {
	if d.status == 200 && r.parseErr == nil && !r.resp.IsError {
		d.storeResponse(ctx, r.body)
	}
	return nil
}

// onStreamChunk processes one STREAMED chunk of an SSE response: it passes
// complete events through (dropping the usage chunk the client did not ask
// for), records usage and text, and holds back an incomplete trailing event
// until the next chunk completes it.
func (d *downstream) onStreamChunk(ctx context.Context, b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	t := time.Now()
	defer d.stage(stageStreamChunk, t)
	chunk := b.GetBody()
	heldBefore := len(d.sse.Pending())
	d.out = d.out[:0]
	modified := false
	err := d.sse.Feed(chunk, func(ev llm.Event) {
		if !d.onEvent(ev) {
			modified = true
		}
	})
	if err != nil {
		// An event larger than the decoder allows: stop interpreting and
		// pass bytes through; usage will be estimated.
		d.s.log.Warn("SSE event too large; passing stream through", "alias", d.alias)
		d.out = append(d.out, chunk...)
		modified = true
	}
	if b.GetEndOfStream() {
		d.sse.Flush(func(ev llm.Event) {
			if !d.onEvent(ev) {
				modified = true
			}
		})
		if d.sg != nil && !d.sawDone {
			d.flushGuard()
			modified = true
		}
		d.endStream(ctx)
		d.phase = phaseDone
	}
	if !modified && heldBefore == 0 && len(d.sse.Pending()) == 0 {
		return responseBodyReply(nil) // forwarded as is
	}
	out := make([]byte, len(d.out))
	copy(out, d.out)
	return responseBodyReply(common(nil, out, true))
}

// onEvent handles one complete SSE event, appending what the client should
// see to d.out. It returns false when the event was dropped or changed.
func (d *downstream) onEvent(ev llm.Event) bool {
	if d.op == llm.OpResponses {
		return d.onResponsesEvent(ev)
	}
	if ev.Done() {
		if d.streamStopped {
			return false
		}
		d.flushGuard()
		if d.streamStopped {
			return false
		}
		d.sawDone = true
		d.out = append(d.out, ev.Raw...)
		return d.sg == nil
	}
	if len(ev.Data) == 0 {
		d.out = append(d.out, ev.Raw...)
		return true
	}
	c, err := llm.ParseChunk(ev.Data)
	if err != nil {
		d.out = append(d.out, ev.Raw...)
		return true
	}
	if c.HasUsage {
		d.usage, d.hasUsage = c.Usage, true
	}
	if c.Model != "" {
		d.respModel = c.Model
	}
	if c.SystemFingerprint != "" {
		d.fingerprint = c.SystemFingerprint
	}
	if d.acc != nil {
		d.acc.Add(ev.Data, c)
	}
	for _, dl := range c.Deltas {
		if dl.Text != "" {
			if d.firstToken.IsZero() {
				d.firstToken = d.s.now()
			}
			if d.text.Len() < maxStreamText {
				d.text.WriteString(dl.Text)
			}
		}
	}
	if d.streamStopped {
		return false // an output guardrail ended the stream for the client
	}
	if c.HasUsage && c.NoChoices && d.stripUse {
		return false // the client did not ask for the usage chunk
	}
	if d.sg != nil {
		return d.guardEvent(ev, c)
	}
	d.out = append(d.out, ev.Raw...)
	return true
}

// guardEvent passes one chunk's deltas through the stream guard: text is
// released only once known clean (possibly later, in another event), a
// finishing choice flushes its window, and a block ends the client's stream
// with an SSE error event and [DONE].
func (d *downstream) guardEvent(ev llm.Event, c llm.Chunk) bool {
	data := ev.Data
	changed := false
	for _, dl := range c.Deltas {
		final := dl.FinishReason != ""
		if dl.Path == "" && !final {
			continue
		}
		rel, b := d.sg.write(dl.Index, dl.Text, final)
		if b != nil {
			d.stopStream(b)
			return false
		}
		d.released.WriteString(rel)
		if rel != dl.Text {
			path := dl.Path
			if path == "" {
				path = "choices." + strconv.Itoa(dl.Pos) + ".delta.content"
			}
			nd, err := llm.SetString(data, path, rel)
			if err != nil {
				d.stopStream(nil)
				return false
			}
			data, changed = nd, true
		}
	}
	if !changed {
		d.out = append(d.out, ev.Raw...)
		return true
	}
	d.out = llm.AppendEvent(d.out, data)
	return false
}

// stopStream ends the client's stream after an output block (or a chunk the
// guard could not rewrite): an SSE error event, then [DONE].
func (d *downstream) stopStream(f *guard.Finding) {
	d.streamStopped, d.outputModified = true, true
	msg := "The response was stopped by an output guardrail."
	if f != nil {
		msg = fmt.Sprintf("The response was stopped by the %s guardrail (%s).", f.Detector, f.Type)
	}
	d.outcome = "blocked_output"
	d.out = append(d.out, llm.ErrorEvent(msg, llm.TypeInvalidRequest, llm.CodeContentBlocked)...)
	d.out = append(d.out, llm.DoneEvent...)
	d.sawDone = true
}

// flushGuard releases the text every choice still holds back, as one
// synthetic chunk per choice, before [DONE] or at the end of the stream.
func (d *downstream) flushGuard() {
	if d.sg == nil || d.streamStopped {
		return
	}
	rest, b := d.sg.flush()
	if b != nil {
		d.stopStream(b)
		return
	}
	for _, i := range sortedIndexes(rest) {
		d.released.WriteString(rest[i])
		if d.op == llm.OpResponses {
			d.out = appendResponsesEvent(d.out, "response.output_text.delta", llm.ResponsesDelta(i, rest[i]))
			continue
		}
		d.out = llm.AppendEvent(d.out, llm.DeltaChunk(i, rest[i]))
	}
}

// sortedIndexes returns the keys of m in increasing order.
func sortedIndexes(m map[int64]string) []int64 {
	idx := make([]int64, 0, len(m))
	for i := range m {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	return idx
}

// partialCompletion collects the "content" and "text" string values of a
// JSON body that may be cut anywhere, as far as they arrived.
func partialCompletion(body []byte) string {
	var out strings.Builder
	for _, key := range []string{`"content":"`, `"text":"`} {
		rest := body
		for {
			i := bytes.Index(rest, []byte(key))
			if i < 0 {
				break
			}
			rest = rest[i+len(key):]
			j := 0
			for j < len(rest) && rest[j] != '"' {
				if rest[j] == '\\' {
					j++
				}
				j++
			}
			out.Write(rest[:min(j, len(rest))])
			rest = rest[min(j, len(rest)):]
		}
	}
	return out.String()
}

// maxStreamText bounds the completion text kept for a cut-stream estimate.
const maxStreamText = 1 << 20

// endStream meters a finished stream.
func (d *downstream) endStream(ctx context.Context) {
	if d.finished {
		return
	}
	if !d.hasUsage {
		d.usage = d.estimateUsage(d.text.String())
	}
	if d.outcome == "" {
		d.outcome = "ok"
	}
	d.settle(ctx)
	if d.acc != nil && d.status == 200 {
		if !d.acc.Complete() {
			d.creq.Bypass("stream_cut")
		}
		if completion, err := d.acc.Completion(); err == nil {
			d.storeResponse(ctx, completion)
		}
	}
}

// estimateUsage counts tokens locally when the provider's usage is missing.
func (d *downstream) estimateUsage(completion string) llm.Usage {
	var u llm.Usage
	if d.req == nil {
		return u
	}
	u.InputTokens = d.countTokens(d.req.PromptText())
	u.OutputTokens = d.countTokens(completion)
	return u
}

func (d *downstream) countTokens(text string) int64 {
	return countTokens(d.s.tokens, d.target, text)
}

// countTokens counts text with model's tokenizer, else estimates.
func countTokens(tc TokenCounter, model, text string) int64 {
	if text == "" {
		return 0
	}
	if tc != nil {
		if n, err := tc.CountTokens(model, text); err == nil {
			return n
		}
	}
	return meter.EstimateTokens(text)
}

// settle computes the actual cost, records metrics and settles the budget
// reservation. It runs at most once per request.
func (d *downstream) settle(ctx context.Context) meter.Money {
	if d.finished {
		return 0
	}
	d.finished = true
	rt := d.rt
	estimated := !d.hasUsage && (d.usage.InputTokens > 0 || d.usage.OutputTokens > 0)
	var cost meter.Money
	if d.req != nil {
		price, ok := rt.price(d.provider, d.target, d.s.now())
		if ok {
			cost = meter.Cost(price, meter.Usage{
				InputTokens: d.usage.InputTokens, OutputTokens: d.usage.OutputTokens,
				CachedInputTokens: d.usage.CachedInputTokens, ReasoningTokens: d.usage.ReasoningTokens,
				Estimated: estimated,
			})
		} else if d.usage.InputTokens+d.usage.OutputTokens > 0 {
			rt.unpriced(d.s.metrics, d.provider, d.target)
		}
	}
	if d.hold != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := d.hold.Settle(sctx, cost); err != nil {
			d.s.metrics.Failures.WithLabelValues("budgets", string(rt.cfg.FailureMode.Budgets)).Inc()
			d.s.log.Error("settling budget reservation failed", "tenant", d.id.Tenant, "err", err)
		}
		cancel()
	}
	d.correctRateLimit(ctx)
	d.record(cost, estimated)
	return cost
}

// record writes the request's metrics.
func (d *downstream) record(cost meter.Money, estimated bool) {
	rt, m := d.rt, d.s.metrics
	tenant := rt.tenantLabels.Value(d.id.Tenant)
	alias := rt.modelLabels.Value(d.alias)
	provider := rt.providerLabels.Value(d.provider)
	target := rt.targetLabels.Value(d.target)
	outcome := d.outcome
	if outcome == "" {
		outcome = "aborted"
	}
	m.Requests.WithLabelValues(tenant, alias, outcome).Inc()
	d.observeModel()
	d.writeAudit(cost.USD(), outcome)
	d.finalCost, d.finalOutcome = cost, outcome
	if d.req == nil {
		return
	}
	if cost > 0 {
		m.CostUSD.WithLabelValues(tenant, provider, target).Add(cost.USD())
	}
	if estimated {
		m.EstimatedRequests.WithLabelValues(tenant, alias).Inc()
	}
	op := d.op.String()
	if d.usage.InputTokens > 0 || d.usage.OutputTokens > 0 {
		m.TokenUsage.WithLabelValues(op, provider, alias, target, "input").Observe(float64(d.usage.InputTokens))
		m.TokenUsage.WithLabelValues(op, provider, alias, target, "output").Observe(float64(d.usage.OutputTokens))
	}
	now := d.s.now()
	m.RequestDuration.WithLabelValues(op, provider, alias, target).Observe(now.Sub(d.start).Seconds())
	if !d.firstToken.IsZero() {
		m.TimeToFirstToken.WithLabelValues(op, provider, alias, target).Observe(d.firstToken.Sub(d.start).Seconds())
		if n := d.usage.OutputTokens; n > 1 {
			m.TimePerOutputToken.WithLabelValues(op, provider, alias, target).Observe(now.Sub(d.firstToken).Seconds() / float64(n-1))
		}
	}
}

// finish runs when the stream ends. A request that was forwarded but whose
// response never completed (client disconnect, Envoy reset) is still
// metered: from the usage seen, else from a tokenizer estimate.
func (d *downstream) finish(ctx context.Context, aborted bool) {
	d.meterOnFinish(ctx)
	d.endSpan(d.finalCost, d.finalOutcome)
}

func (d *downstream) meterOnFinish(ctx context.Context) {
	if d.finished {
		return
	}
	if !d.forwarded {
		d.finished = true
		d.releaseHold()
		d.correctRateLimit(ctx)
		if d.outcome != "" {
			d.record(0, false)
		}
		return
	}
	switch {
	case d.phase == phaseDone:
	case d.sawDone && d.outcome == "":
		// A stream that delivered [DONE] is complete even if the client
		// left before Envoy's final empty chunk.
		d.outcome = "ok"
	default:
		d.outcome = "aborted" // cut before the end
	}
	if !d.hasUsage {
		d.usage = d.estimateUsage(d.text.String())
	}
	d.settle(ctx)
}

// errorBody turns a non-JSON error body (an Envoy local reply such as
// "no healthy upstream") into an OpenAI-shaped error of the same status.
func (d *downstream) errorBody(body []byte) *extprocv3.ProcessingResponse {
	typ, code := llm.TypeServer, llm.CodeUpstreamFailure
	msg := "The model provider is unavailable: every target of '" + d.alias + "' failed."
	switch {
	case d.status == 404:
		typ, code, msg = llm.TypeInvalidRequest, llm.CodeModelNotFound, "No route for this request."
	case d.status < 500:
		typ, code = llm.TypeInvalidRequest, "upstream_error"
		msg = "The request was rejected upstream."
	case d.status == 504:
		msg = "The model provider did not answer in time."
	}
	if detail := strings.TrimSpace(string(body)); detail != "" && len(detail) < 200 {
		msg += " (" + detail + ")"
	}
	out := llm.ErrorJSON(msg, typ, code)
	var mut mutation
	mut.setHeader("content-length", strconv.Itoa(len(out)))
	return responseBodyReply(common(&mut, out, true))
}

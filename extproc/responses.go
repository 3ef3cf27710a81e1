package extproc

import (
	"github.com/tollgate-dev/tollgate/pkg/llm"
)

// detectorUninspectable labels input the guardrails could not read in
// tollgate_guardrail_findings_total{direction="input",action="log"}.
const detectorUninspectable = "uninspectable"

// countUninspected makes input the guardrails cannot read visible: a
// Responses request with images, files, audio or earlier tool calls goes
// on (the text around them is screened, budgets and metering apply as
// usual: the provider's usage counts every token), and each such request
// with an input guard on is counted and logged.
func (d *downstream) countUninspected() {
	if d.rt.inGuard == nil || d.req == nil || !d.req.Opaque {
		return
	}
	d.s.metrics.GuardFindings.WithLabelValues("input", detectorUninspectable, "log").Inc()
	d.s.log.Warn("request input not screened: items or parts other than text", "tenant", d.id.Tenant, "alias", d.alias, "op", d.op.String())
}

// onResponsesEvent is onEvent for a Responses API stream (POST
// /v1/responses): typed events, usage in the final response.completed (or
// .incomplete / .failed) event, no [DONE]. The output text deltas feed the
// cut-stream estimate and the stream guard; the events that repeat the full
// text (output_text.done, content_part.done, output_item.done and the final
// response object) are screened whole, so that no copy of a redacted or
// blocked text reaches the client. It returns false when the event was
// dropped or changed.
func (d *downstream) onResponsesEvent(ev llm.Event) bool {
	if len(ev.Data) == 0 || ev.Done() {
		if d.streamStopped {
			return false
		}
		d.out = append(d.out, ev.Raw...)
		return true
	}
	e, err := llm.ParseResponsesEvent(ev.Data)
	if err != nil {
		if d.streamStopped {
			return false
		}
		if d.sg != nil {
			// The guard cannot read it, so it cannot vouch for it.
			d.stopStream(nil)
			return false
		}
		d.out = append(d.out, ev.Raw...)
		return true
	}
	if e.HasUsage {
		d.usage, d.hasUsage = e.Usage, true
	}
	if e.Model != "" {
		d.respModel = e.Model
	}
	if e.Delta != "" {
		if d.firstToken.IsZero() {
			d.firstToken = d.s.now()
		}
		if d.text.Len() < maxStreamText {
			d.text.WriteString(e.Delta)
		}
	}
	if e.IsError && d.outcome == "" {
		d.outcome = "provider_error"
	}
	if d.streamStopped {
		return false
	}
	if d.sg == nil {
		if e.Final {
			d.sawDone = true
		}
		d.out = append(d.out, ev.Raw...)
		return true
	}
	return d.guardResponsesEvent(ev, e)
}

// guardResponsesEvent passes a Responses stream event through the output
// guard: a delta through the stream guard's window for its output index
// (held-back text is released in later deltas or in one synthetic delta
// before the final event), a full-text copy through a whole-text check.
func (d *downstream) guardResponsesEvent(ev llm.Event, e llm.ResponsesEvent) bool {
	data, changed, added := ev.Data, false, false
	if e.DeltaPath != "" {
		rel, b := d.sg.write(e.OutputIndex, e.Delta, false)
		if b != nil {
			d.stopStream(b)
			return false
		}
		d.released.WriteString(rel)
		if rel != e.Delta {
			nd, err := llm.SetString(data, e.DeltaPath, rel)
			if err != nil {
				d.stopStream(nil)
				return false
			}
			data, changed = nd, true
		}
	}
	if e.Type == "response.output_text.done" || e.Final {
		// Release what the window holds before the text is declared done.
		rest, b := d.sg.flush()
		if b != nil {
			d.stopStream(b)
			return false
		}
		for _, i := range sortedIndexes(rest) {
			d.released.WriteString(rest[i])
			d.out = appendResponsesEvent(d.out, "response.output_text.delta", llm.ResponsesDelta(i, rest[i]))
			added = true
		}
	}
	if len(e.Texts) > 0 {
		sess := d.rt.outGuard.NewSession()
		for _, t := range e.Texts {
			res := sess.Check(t.Text)
			if res.Blocked {
				d.stopStream(res.BlockedBy)
				return false
			}
			if res.Modified {
				nd, err := llm.SetString(data, t.Path, res.Text)
				if err != nil {
					d.stopStream(nil)
					return false
				}
				data, changed = nd, true
				d.outputModified = true
			}
		}
	}
	if e.Final {
		d.sawDone = true
	}
	if !changed {
		d.out = append(d.out, ev.Raw...)
		return !added
	}
	d.out = appendResponsesEvent(d.out, e.Type, data)
	return false
}

// appendResponsesEvent appends one typed SSE event ("event: <type>").
func appendResponsesEvent(dst []byte, typ string, data []byte) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, typ...)
	dst = append(dst, '\n')
	return llm.AppendEvent(dst, data)
}

package extproc

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/llm"
)

// guardInput screens the request texts of the roles the config names:
// block answers 400 content_blocked (naming the detector, never the
// value), redact rewrites the text in the body before the provider sees it.
// Then the external moderation endpoint, if configured, sees the texts as
// redacted (guardExternal).
func (d *downstream) guardInput(ctx context.Context) *rejection {
	g := d.rt.inGuard
	if g == nil {
		return nil
	}
	sess := g.NewSession()
	var screened []string
	for i, t := range d.req.Texts {
		if d.op == llm.OpChat && !g.InspectsRole(t.Role) {
			continue
		}
		res := sess.Check(t.Text)
		d.countFindings(g, "input", res.Findings)
		if res.Blocked {
			return blocked(res.BlockedBy)
		}
		if res.Modified {
			if err := d.req.SetText(i, res.Text); err != nil {
				return reject(400, llm.TypeInvalidRequest, "invalid_request", "bad_request", err.Error())
			}
			d.inputRedacted = true
		}
		screened = append(screened, res.Text)
	}
	return d.guardExternal(ctx, g, screened)
}

// guardExternal sends the screened input texts, joined, to the external
// moderation endpoint in one call; a flag is acted on like any finding. A
// failed call (down, timeout, bad answer) is a guardrail failure:
// failure_mode.guardrails closed answers 503 guardrails_unavailable, open
// lets the request through unmoderated; both are counted in
// tollgate_failures_total{layer="guardrails"} and logged.
func (d *downstream) guardExternal(ctx context.Context, g *guard.Guard, texts []string) *rejection {
	if !g.HasExternal() || len(texts) == 0 {
		return nil
	}
	fs, err := g.CheckExternal(ctx, strings.Join(texts, "\n\n"))
	if err != nil {
		return d.dependencyFailed("guardrails", d.rt.cfg.FailureMode.Guardrails, "guardrails_unavailable", "content moderation service", err)
	}
	d.countFindings(g, "input", fs)
	for i := range fs {
		if a, _ := g.ActionFor(fs[i]); a == guard.ActionBlock {
			return blocked(&fs[i])
		}
	}
	return nil
}

// setGuardrailsHeader sets contract.HeaderGuardrails on a response: whether the
// input guard redacted the request and whether the output guard changed the
// answer (known only for a buffered answer, whose headers wait for the
// body; a stream's headers leave before its first chunk). No header when
// both directions are off.
func (d *downstream) setGuardrailsHeader(m *mutation) {
	if d.rt.inGuard == nil && d.rt.outGuard == nil {
		return
	}
	v := "none"
	switch {
	case d.inputRedacted && d.outputModified:
		v = "redacted-input,redacted-output"
	case d.inputRedacted:
		v = "redacted-input"
	case d.outputModified:
		v = "redacted-output"
	}
	m.setHeader(contract.HeaderGuardrails, v)
}

func blocked(f *guard.Finding) *rejection {
	return reject(400, llm.TypeInvalidRequest, llm.CodeContentBlocked, "blocked",
		fmt.Sprintf("The content was blocked by the %s guardrail (%s).", f.Detector, f.Type))
}

// countFindings records findings by detector and the action taken.
func (d *downstream) countFindings(g *guard.Guard, direction string, fs []guard.Finding) {
	for _, f := range fs {
		a, _ := g.ActionFor(f)
		d.s.metrics.GuardFindings.WithLabelValues(direction, f.Detector, a.String()).Inc()
		d.findings = append(d.findings, findingRecord{Direction: direction, Detector: f.Detector, Type: f.Type, Start: f.Start, End: f.End, Action: a.String()})
		if direction == "output" && (f.Detector == guard.DetectorPII || f.Detector == guard.DetectorEntities) {
			d.outputPII = true
		}
	}
}

// findingRecord is a finding as kept for the audit: type and position,
// never the matched value.
type findingRecord struct {
	Direction, Detector, Type, Action string
	Start, End                        int
}

// guardOutput screens a complete (buffered) response. It returns the body
// to send (possibly redacted) or a rejection for a block.
func (d *downstream) guardOutput(body []byte, resp *llm.Response) ([]byte, *rejection) {
	g := d.rt.outGuard
	if g == nil || resp == nil || resp.IsError {
		return body, nil
	}
	sess := g.NewSession()
	out := body
	for _, t := range resp.Texts {
		res := sess.Check(t.Text)
		d.countFindings(g, "output", res.Findings)
		if res.Blocked {
			d.outputModified = true
			return nil, blocked(res.BlockedBy)
		}
		if res.Modified {
			var err error
			out, err = llm.SetString(out, t.Path, res.Text)
			if err != nil {
				return nil, reject(502, llm.TypeServer, llm.CodeInternal, "provider_malformed", "could not redact the response")
			}
			d.outputModified = true
		}
	}
	return out, nil
}

// streamGuard screens streamed deltas per choice with a hold-back window.
type streamGuard struct {
	g       *guard.Guard
	sess    *guard.Session
	streams map[int64]*guard.Stream
	blocked *guard.Finding
}

func newStreamGuard(g *guard.Guard) *streamGuard {
	return &streamGuard{g: g, sess: g.NewSession(), streams: map[int64]*guard.Stream{}}
}

func (sg *streamGuard) stream(i int64) *guard.Stream {
	st := sg.streams[i]
	if st == nil {
		st = sg.sess.NewStream()
		sg.streams[i] = st
	}
	return st
}

// write passes a delta through the window; final flushes the choice.
func (sg *streamGuard) write(i int64, text string, final bool) (string, *guard.Finding) {
	st := sg.stream(i)
	rel, b := st.Write(text)
	if b == nil && final {
		var rest string
		rest, b = st.Close()
		rel += rest
	}
	if b != nil {
		sg.blocked = b
	}
	return rel, b
}

// flush releases what every open choice still holds (end of stream).
func (sg *streamGuard) flush() (map[int64]string, *guard.Finding) {
	out := map[int64]string{}
	idx := make([]int64, 0, len(sg.streams))
	for i := range sg.streams {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	for _, i := range idx {
		rest, b := sg.streams[i].Close()
		if b != nil {
			sg.blocked = b
			return nil, b
		}
		if rest != "" {
			out[i] = rest
		}
	}
	return out, nil
}

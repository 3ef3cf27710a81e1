//go:build wasip1

package main

import (
	"unsafe"

	"github.com/tollgate-dev/tollgate/wasm/proxywasm"
	"github.com/tollgate-dev/tollgate/wasm/router"
)

// Metric names. Envoy prefixes them with "wasmcustom."; the outcome is the
// last segment (see wasm/README.md for a stats_tags rule extracting it).
const (
	decisionsMetric = "tollgate_router_decisions.outcome."
	canaryMetric    = "tollgate_router_canary_routed"
	strippedMetric  = "tollgate_router_stripped_headers"
	outcomeError    = "error"
)

func init() {
	// Only registration here: Envoy allows no host call but proxy_log during
	// _initialize.
	proxywasm.SetNewPlugin(func(uint32) proxywasm.Plugin { return &plugin{} })
}

type plugin struct {
	router *router.Router
	// decisions[i] is the counter for router.Outcomes[i]; the last entry
	// counts internal errors (fail closed with a 500).
	decisions []uint32
	// details[i] is Envoy's response code details for router.Outcomes[i].
	details  []string
	canary   uint32
	stripped uint32
	// Reused per request: a VM runs one callback at a time, and allocation
	// is the main cost inside wasm.
	headers  [][2]string
	decision router.Decision
	body     []byte
}

var _ proxywasm.Plugin = (*plugin)(nil)

func (p *plugin) OnConfigure(config []byte) bool {
	r, err := router.ParseConfig(config)
	if err != nil {
		proxywasm.Log(proxywasm.LogError, "tollgate-router: rejecting plugin configuration: "+err.Error())
		return false
	}
	if p.decisions == nil {
		names := make([]string, 0, len(router.Outcomes)+1)
		for _, o := range router.Outcomes {
			names = append(names, decisionsMetric+string(o))
			p.details = append(p.details, (&router.Decision{Outcome: o}).Details())
		}
		names = append(names, decisionsMetric+outcomeError)
		for _, n := range names {
			id, err := proxywasm.DefineCounter(n)
			if err != nil {
				proxywasm.Log(proxywasm.LogError, "tollgate-router: defining metric "+n+": "+err.Error())
				return false
			}
			p.decisions = append(p.decisions, id)
		}
		if p.canary, err = proxywasm.DefineCounter(canaryMetric); err != nil {
			proxywasm.Log(proxywasm.LogError, "tollgate-router: defining metric: "+err.Error())
			return false
		}
		if p.stripped, err = proxywasm.DefineCounter(strippedMetric); err != nil {
			proxywasm.Log(proxywasm.LogError, "tollgate-router: defining metric: "+err.Error())
			return false
		}
	}
	p.router = r
	return true
}

// stream is the per-request handler; the router is stateless per request, so
// it is the plugin itself under another method set (no allocation).
type stream plugin

func (p *plugin) NewStream(uint32) proxywasm.Stream { return (*stream)(p) }

func (s *stream) OnResponseHeaders(int, bool) proxywasm.Action { return proxywasm.ActionContinue }

func (s *stream) OnDone() {}

func (s *stream) count(id uint32, delta int64) {
	if err := proxywasm.IncrementCounter(id, delta); err != nil {
		proxywasm.Log(proxywasm.LogWarn, "tollgate-router: metric: "+err.Error())
	}
}

func (s *stream) OnRequestHeaders(int, bool) proxywasm.Action {
	headers, err := proxywasm.AppendHeaders(s.headers[:0], proxywasm.RequestHeaders)
	s.headers = headers
	// The header strings alias the binding's scratch buffer, which the next
	// stream callback reuses: no reference to them may outlive this one.
	defer s.release()
	if err != nil {
		return s.failClosed("reading request headers: " + err.Error())
	}
	d := &s.decision
	s.router.DecideInto(router.Request{Headers: headers, RequestID: requestID}, d)
	for _, name := range d.Remove {
		if err := proxywasm.RemoveHeader(proxywasm.RequestHeaders, name); err != nil {
			return s.failClosed("removing " + name + ": " + err.Error())
		}
	}
	if len(d.Remove) > 0 {
		s.count(s.stripped, int64(len(d.Remove)))
	}
	if d.Reply != nil {
		s.body = d.Reply.AppendBody(s.body[:0])
		details := ""
		if i := outcomeIndex(d.Outcome); i < len(s.details) {
			details = s.details[i] // precomputed d.Details(): no concatenation
		} else {
			details = d.Details()
		}
		err := proxywasm.SendLocalReply(d.Reply.Status, details, s.body,
			[][2]string{{"content-type", "application/json"}})
		if err != nil {
			return s.failClosed("sending local reply: " + err.Error())
		}
		s.countOutcome(d.Outcome)
		return proxywasm.ActionPause
	}
	for _, h := range d.Set {
		if err := proxywasm.ReplaceHeader(proxywasm.RequestHeaders, h.Name, h.Value); err != nil {
			return s.failClosed("setting " + h.Name + ": " + err.Error())
		}
	}
	s.countOutcome(d.Outcome)
	if d.Canary {
		s.count(s.canary, 1)
	}
	return proxywasm.ActionContinue
}

// release drops every reference to this callback's header strings: the
// header slice and the decision's Remove and Set (route can be the client's
// x-tollgate-model value). Replies are built by concatenation and own their
// bytes.
func (s *stream) release() {
	clear(s.headers)
	clear(s.decision.Remove)
	clear(s.decision.Set)
}

// countOutcome counts o; an outcome the filter does not know counts as error.
func (s *stream) countOutcome(o router.Outcome) {
	s.count(s.decisions[min(outcomeIndex(o), len(s.decisions)-1)], 1)
}

// outcomeIndex is o's index in router.Outcomes, or len(router.Outcomes).
func outcomeIndex(o router.Outcome) int {
	for i, known := range router.Outcomes {
		if known == o {
			return i
		}
	}
	return len(router.Outcomes)
}

// failClosed answers 500 when a host call fails: never let a request through
// with unverified identity headers.
func (s *stream) failClosed(msg string) proxywasm.Action {
	proxywasm.Log(proxywasm.LogError, "tollgate-router: "+msg)
	s.count(s.decisions[len(s.decisions)-1], 1)
	r := router.Reply{Status: 500, Type: "server_error", Code: "router_error", Message: "The request router failed."}
	_ = proxywasm.SendLocalReply(r.Status, "tollgate_router_error", r.Body(), [][2]string{{"content-type", "application/json"}})
	return proxywasm.ActionPause
}

// requestIDPath is the request.id property path, pre-joined.
const requestIDPath = "request\x00id"

// requestID reads the request.id property. The bytes live in the binding's
// scratch buffer: the router hashes them within this callback and keeps
// nothing.
func requestID() string {
	v, _, err := proxywasm.Property(requestIDPath)
	if err != nil {
		proxywasm.Log(proxywasm.LogWarn, "tollgate-router: request.id property: "+err.Error())
		return ""
	}
	return unsafe.String(unsafe.SliceData(v), len(v))
}

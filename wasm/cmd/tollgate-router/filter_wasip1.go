//go:build wasip1

package main

import (
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
	canary    uint32
	stripped  uint32
	// Reused per request: a VM runs one callback at a time, and allocation
	// is the main cost inside wasm.
	headers  [][2]string
	decision router.Decision
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
	defer clear(s.headers) // drop references to this request's buffer
	if err != nil {
		return s.failClosed("reading request headers: " + err.Error())
	}
	d := &s.decision
	s.router.DecideInto(router.Request{Headers: headers, RequestID: requestIDProperty}, d)
	for _, name := range d.Remove {
		if err := proxywasm.RemoveHeader(proxywasm.RequestHeaders, name); err != nil {
			return s.failClosed("removing " + name + ": " + err.Error())
		}
	}
	if len(d.Remove) > 0 {
		s.count(s.stripped, int64(len(d.Remove)))
	}
	if d.Reply != nil {
		err := proxywasm.SendLocalReply(d.Reply.Status, d.Details(), d.Reply.Body(),
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

func (s *stream) countOutcome(o router.Outcome) {
	for i, known := range router.Outcomes {
		if known == o {
			s.count(s.decisions[i], 1)
			return
		}
	}
	s.count(s.decisions[len(s.decisions)-1], 1)
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

func requestIDProperty() string {
	v, _, err := proxywasm.Property("request", "id")
	if err != nil {
		proxywasm.Log(proxywasm.LogWarn, "tollgate-router: request.id property: "+err.Error())
		return ""
	}
	return string(v)
}

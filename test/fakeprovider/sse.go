package fakeprovider

import (
	"encoding/json"
	"net/http"
	"time"
)

// sseStream writes server-sent events one by one, flushing each, with the
// configured delay between events and the cut-stream fault applied.
type sseStream struct {
	p     *Provider
	w     http.ResponseWriter
	r     *http.Request
	rc    *http.ResponseController
	delay time.Duration
	cutAt int
	sent  int
	dead  bool
}

func (p *Provider) newSSE(w http.ResponseWriter, r *http.Request, b behaviour) *sseStream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	return &sseStream{p: p, w: w, r: r, rc: rc, delay: b.chunkDelay, cutAt: b.fault.CutAfter}
}

// send marshals v as one data event; false when the stream must stop.
func (s *sseStream) send(v any) bool {
	data, err := json.Marshal(v)
	if err != nil {
		s.p.logger.Error("fakeprovider: marshal chunk", "err", err)
		return false
	}
	return s.sendRaw(data)
}

func (s *sseStream) sendRaw(data []byte) bool { return s.sendEvent("", data) }

// sendEvent writes one event, with an "event: <name>" line when name is set
// (the Responses API's typed events).
func (s *sseStream) sendEvent(name string, data []byte) bool {
	if s.dead {
		return false
	}
	if s.cutAt >= 0 && s.sent >= s.cutAt {
		s.p.dropConnection(s.w)
		s.dead = true
		return false
	}
	if s.sent > 0 && !sleepCtx(s.r.Context(), s.delay) {
		s.dead = true
		return false
	}
	buf := make([]byte, 0, len(name)+len(data)+16)
	if name != "" {
		buf = append(buf, "event: "...)
		buf = append(buf, name...)
		buf = append(buf, '\n')
	}
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	if _, err := s.w.Write(buf); err != nil {
		s.dead = true
		return false
	}
	if err := s.rc.Flush(); err != nil {
		s.dead = true
		return false
	}
	s.sent++
	return true
}

// done ends the stream with the [DONE] sentinel.
func (s *sseStream) done() {
	s.sendRaw([]byte("[DONE]"))
}

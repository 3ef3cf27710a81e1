package guard

import "unicode/utf8"

// maxHold bounds how much a Stream holds back while waiting for a token or
// an open-ended entity (e.g. a private key block) to complete.
const maxHold = 64 << 10

// Stream scans text that arrives in deltas (an output stream). It holds
// back at least the configured window, never releases part of a token or
// of a detected entity that may still grow, and releases text only after
// it was scanned with enough right context. Redaction replaces entities in
// the released text with the session's placeholders. A Stream is not safe
// for concurrent use.
//
// Streams run the span detectors (PII, secrets, entities); the injection scorer
// works on whole texts and is not applied to deltas.
type Stream struct {
	s       *Session
	buf     []byte // context (already released) + pending text
	ctx     int    // bytes at the start of buf that were already released
	base    int    // stream offset of buf[0]
	blocked *Finding
	scratch []Finding
}

// NewStream starts scanning one stream of the session's request.
func (s *Session) NewStream() *Stream { return &Stream{s: s} }

// Write adds a delta and returns the text that is now safe to emit (may be
// empty). A non-nil blocked finding means the stream must be stopped; its
// offsets are relative to the start of the stream; later calls return the
// same finding.
func (st *Stream) Write(delta string) (release string, blocked *Finding) {
	if st.blocked != nil {
		return "", st.blocked
	}
	st.buf = append(st.buf, delta...)
	return st.release(false)
}

// Close flushes the window at the end of the stream.
func (st *Stream) Close() (release string, blocked *Finding) {
	if st.blocked != nil {
		return "", st.blocked
	}
	return st.release(true)
}

func (st *Stream) release(final bool) (string, *Finding) {
	g := st.s.g
	text := string(st.buf) // scanned view; findings index into it
	fs := st.scratch[:0]
	for _, d := range g.detectors {
		if d.Name() == DetectorInjection {
			continue
		}
		fs = d.Detect(text, fs)
	}
	n := 0
	for _, f := range fs {
		if _, ok := g.ActionFor(f); ok && f.End > st.ctx {
			fs[n] = f
			n++
		}
	}
	fs = resolveOverlaps(fs[:n])
	st.scratch = fs

	cut := len(text)
	if !final {
		cut = st.safeCut(text, fs)
	}
	for i, f := range fs {
		if a, _ := g.ActionFor(f); a == ActionBlock {
			b := fs[i]
			b.Start += st.base
			b.End += st.base
			st.blocked = &b
			st.buf = nil
			return "", st.blocked
		}
	}
	if cut <= st.ctx {
		return "", nil
	}
	// Redact within [ctx, cut); findings are shifted so that the released
	// slice starts at 0.
	out := text[st.ctx:cut]
	var shifted []Finding
	for _, f := range fs {
		if f.Start >= st.ctx && f.End <= cut {
			f.Start -= st.ctx
			f.End -= st.ctx
			shifted = append(shifted, f)
		}
	}
	if len(shifted) > 0 {
		out, _ = st.s.redact(out, shifted, len(out))
	}
	// Keep up to a window of released text as left context for the next
	// scan (a key name before a value, a local part before '@').
	keep := min(cut, g.window)
	for keep > 0 && !utf8.RuneStart(st.buf[cut-keep]) {
		keep--
	}
	drop := cut - keep
	st.base += drop
	st.buf = append(st.buf[:0], st.buf[drop:]...)
	st.ctx = keep
	if final {
		st.buf, st.ctx = st.buf[:0], 0
	}
	return out, nil
}

// safeCut returns the end of the releasable prefix of text: at least the
// window is held back, the cut never splits a finding or a run of
// non-space bytes, and never splits a UTF-8 sequence.
func (st *Stream) safeCut(text string, fs []Finding) int {
	cut := len(text) - st.s.g.window
	if len(text)-st.ctx > maxHold {
		cut = max(cut, len(text)-maxHold)
	}
	if cut <= st.ctx {
		return st.ctx
	}
	// Back up to a white-space boundary unless the pending text exceeds
	// maxHold (a huge token), then cut anyway.
	if len(text)-st.ctx <= maxHold {
		for cut > st.ctx && !isSpaceByte(text[cut-1]) {
			cut--
		}
	}
	// Never split a finding (fs is sorted by start; moving the cut back
	// can only meet earlier findings).
	for i := len(fs) - 1; i >= 0; i-- {
		if f := fs[i]; f.Start < cut && f.End > cut {
			cut = f.Start
		}
	}
	for cut > st.ctx && cut < len(text) && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return max(cut, st.ctx)
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r'
}

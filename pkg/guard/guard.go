package guard

import (
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Finding is one detection. Start and End are UTF-8 byte offsets into the
// scanned text (End exclusive). It never holds the matched value.
type Finding struct {
	Detector string  // "pii", "secrets", "injection", "external"
	Type     string  // e.g. "EMAIL", "CREDIT_CARD", "AWS_ACCESS_KEY", "PROMPT_INJECTION"
	Start    int     // byte offset of the first byte
	End      int     // byte offset after the last byte
	Score    float64 // confidence in [0,1]
}

// Detector finds entities in text. Detect appends its findings to dst and
// returns it; it must not allocate when it finds nothing and must be safe
// for concurrent use.
type Detector interface {
	Name() string
	// Types lists every Finding.Type the detector can report.
	Types() []string
	Detect(text string, dst []Finding) []Finding
}

// Result is the outcome of checking one text.
type Result struct {
	Text      string    // text to forward: redacted when Modified, "" when Blocked
	Findings  []Finding // findings with a configured action, offsets into the input text
	Blocked   bool
	BlockedBy *Finding // the finding that caused the block (points into Findings)
	Modified  bool     // Text differs from the input (redaction)
}

// Guard applies one direction's configuration. It is safe for concurrent use.
type Guard struct {
	cfg       Config
	detectors []Detector
	injection *injectionDetector
	window    int
}

// New validates cfg and builds a Guard. It returns an error wrapping
// ErrInvalidConfig that lists every problem.
func New(cfg Config) (*Guard, error) {
	model, err := loadModel()
	if err != nil {
		return nil, err
	}
	// The entities detector's lexicon (4 MiB of heap, loaded once per
	// process) is only loaded when a rule enables the detector.
	ents := &entitiesDetector{}
	all := []Detector{newPIIDetector(), newSecretsDetector(), ents, newInjectionDetector(model, cfg.InjectionThreshold)}
	known := map[string]bool{DetectorExternal: true}
	for _, d := range all {
		known[d.Name()] = true
		for _, t := range d.Types() {
			known[t] = true
		}
	}
	if err := cfg.validate(known); err != nil {
		return nil, err
	}
	g := &Guard{cfg: cfg, window: cfg.StreamWindow}
	if g.window == 0 {
		g.window = DefaultStreamWindow
	}
	rules := make(map[string]Action, len(cfg.Rules))
	for k, v := range cfg.Rules {
		rules[k] = v
	}
	g.cfg.Rules = rules
	if g.enabled(ents) {
		if ents.g, err = loadGazetteer(); err != nil {
			return nil, err
		}
	}
	for _, d := range all {
		if g.enabled(d) {
			g.detectors = append(g.detectors, d)
			if inj, ok := d.(*injectionDetector); ok {
				g.injection = inj
			}
		}
	}
	return g, nil
}

func (g *Guard) enabled(d Detector) bool {
	if _, ok := g.cfg.Rules[d.Name()]; ok {
		return true
	}
	for _, t := range d.Types() {
		if _, ok := g.cfg.Rules[t]; ok {
			return true
		}
	}
	return false
}

// ActionFor returns the action configured for f (type rule first, then
// detector rule) and whether there is one.
func (g *Guard) ActionFor(f Finding) (Action, bool) {
	if a, ok := g.cfg.Rules[f.Type]; ok {
		return a, true
	}
	a, ok := g.cfg.Rules[f.Detector]
	return a, ok
}

// InspectsRole reports whether messages of this chat role are checked
// (Config.Roles; default user and tool).
func (g *Guard) InspectsRole(role string) bool {
	if g.cfg.Roles == nil {
		return role == "user" || role == "tool"
	}
	return slices.Contains(g.cfg.Roles, role)
}

// InjectionThreshold is the threshold in use (configured or shipped).
func (g *Guard) InjectionThreshold() float64 {
	if g.injection == nil {
		return resolveThreshold(g.cfg.InjectionThreshold, nil)
	}
	return g.injection.threshold
}

// InjectionScore returns the prompt-injection score of text in [0,1] (the
// highest of the plain text and any hidden or encoded payload), or 0 when
// the injection detector is not enabled.
func (g *Guard) InjectionScore(text string) float64 {
	if g.injection == nil {
		return 0
	}
	return g.injection.Score(text)
}

// Scan runs the enabled detectors over text and returns the findings that
// have a configured action, sorted by start offset, with overlapping spans
// resolved (the earliest, then the longest span wins; whole-text findings
// are kept). It does not allocate when nothing is found.
func (g *Guard) Scan(text string) []Finding {
	var fs []Finding
	for _, d := range g.detectors {
		fs = d.Detect(text, fs)
	}
	if len(fs) == 0 {
		return nil
	}
	n := 0
	for _, f := range fs {
		if _, ok := g.ActionFor(f); ok {
			fs[n] = f
			n++
		}
	}
	fs = fs[:n]
	return resolveOverlaps(fs)
}

// wholeText reports findings that describe the text as a whole rather
// than a span to redact.
func wholeText(f Finding) bool {
	return f.Type == TypePromptInjection || f.Detector == DetectorExternal
}

// DetectorTypes lists, per built-in detector name, the finding types it
// can report; every name and type is a valid Config.Rules key.
func DetectorTypes() map[string][]string {
	return map[string][]string{
		DetectorPII:       newPIIDetector().Types(),
		DetectorSecrets:   newSecretsDetector().Types(),
		DetectorInjection: (*injectionDetector)(nil).Types(),
		DetectorEntities:  (*entitiesDetector)(nil).Types(),
	}
}

// priority orders detectors when spans overlap: a secret wins over PII
// (a token before '@' is not an e-mail local part).
func priority(f Finding) int {
	switch f.Detector {
	case DetectorSecrets:
		return 2
	case DetectorPII:
		return 1 // a phone or e-mail inside an address keeps its own type
	}
	return 0
}

func resolveOverlaps(fs []Finding) []Finding {
	if len(fs) < 2 {
		return fs
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if pa, pb := priority(a), priority(b); pa != pb {
			return pb - pa
		}
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	out := fs[:0]
	for _, f := range fs {
		keep := true
		if !wholeText(f) {
			for _, k := range out {
				if !wholeText(k) && f.Start < k.End && k.Start < f.End {
					keep = false
					break
				}
			}
		}
		if keep {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return a.Start - b.Start })
	return out
}

// Session holds the per-request state: placeholder numbering. It is safe
// for concurrent use.
type Session struct {
	g      *Guard
	mu     sync.Mutex
	seed   maphash.Seed
	values map[uint64]string // hash of type+value -> placeholder
	counts map[string]int    // type -> last number used
}

// NewSession starts a request.
func (g *Guard) NewSession() *Session {
	return &Session{g: g, seed: maphash.MakeSeed()}
}

// placeholder returns the session's placeholder for value of type typ,
// e.g. "[EMAIL_1]". Only a keyed hash of the value is kept.
func (s *Session) placeholder(typ, value string) string {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(typ)
	h.WriteByte(0)
	h.WriteString(value)
	key := h.Sum64()
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.values[key]; ok {
		return p
	}
	if s.values == nil {
		s.values = map[uint64]string{}
		s.counts = map[string]int{}
	}
	s.counts[typ]++
	p := "[" + typ + "_" + strconv.Itoa(s.counts[typ]) + "]"
	s.values[key] = p
	return p
}

// Check scans one text (a message content) and applies the configured
// actions: on a block, Result.Text is empty and BlockedBy names the
// finding; otherwise redact findings are replaced by placeholders.
func (s *Session) Check(text string) Result {
	fs := s.g.Scan(text)
	if len(fs) == 0 {
		return Result{Text: text}
	}
	res := Result{Text: text, Findings: fs}
	if i := s.g.firstBlock(fs); i >= 0 {
		res.Text = ""
		res.Blocked = true
		res.BlockedBy = &res.Findings[i]
		return res
	}
	res.Text, res.Modified = s.redact(text, fs, len(text))
	return res
}

func (g *Guard) firstBlock(fs []Finding) int {
	best := -1
	for i, f := range fs {
		if a, _ := g.ActionFor(f); a == ActionBlock && (best < 0 || f.Score > fs[best].Score) {
			best = i
		}
	}
	return best
}

// redact returns text[:limit] with every redact finding inside it
// replaced by its placeholder. fs must be sorted and non-overlapping for
// span findings.
func (s *Session) redact(text string, fs []Finding, limit int) (string, bool) {
	var b strings.Builder
	last := 0
	for _, f := range fs {
		if wholeText(f) || f.End > limit {
			continue
		}
		if a, _ := s.g.ActionFor(f); a != ActionRedact || f.Start < last {
			continue
		}
		if b.Len() == 0 {
			b.Grow(limit + 16)
		}
		b.WriteString(text[last:f.Start])
		b.WriteString(s.placeholder(f.Type, text[f.Start:f.End]))
		last = f.End
	}
	if last == 0 && b.Len() == 0 {
		return text[:limit], false
	}
	b.WriteString(text[last:limit])
	return b.String(), true
}

// String describes a finding without any matched value.
func (f Finding) String() string {
	return fmt.Sprintf("%s/%s[%d:%d] %.2f", f.Detector, f.Type, f.Start, f.End, f.Score)
}

package ratelimit

import (
	"context"
	"time"
)

// Window is the length of one counting window.
const Window = time.Minute

// Kind names a limit: requests or tokens per minute.
type Kind string

// Kinds of limit.
const (
	RPM Kind = "rpm"
	TPM Kind = "tpm"
)

// Limits are the per-minute caps of one subject; zero means no cap.
type Limits struct {
	RPM int64
	TPM int64
}

// Subject is one limited party, e.g. {Scope: "tenant", ID: "acme"}.
type Subject struct {
	Scope  string
	ID     string
	Limits Limits
}

// Usage is what a subject has used in the current window.
type Usage struct {
	Requests int64
	Tokens   int64
}

// Store keeps the counters. Take checks and charges every subject of a
// request atomically: when each one's requests+1 and tokens+tokens fit its
// limits, all are charged and ok is true; otherwise none is. used is each
// subject's usage after the call (after the charge when ok). Add moves the
// token counters of the subjects' window by delta (negative allowed) and
// never creates a window that has no counters.
type Store interface {
	Take(ctx context.Context, window int64, group string, subjects []Subject, tokens int64) (used []Usage, ok bool, err error)
	Add(ctx context.Context, window int64, group string, subjects []Subject, delta int64) error
}

// Quota is the tightest limit of one kind across a request's subjects.
type Quota struct {
	Limit     int64 // 0: no subject limits this kind
	Remaining int64
}

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// Kind and Subject name the limit that refused the request.
	Kind    Kind
	Subject Subject
	// TooLarge: the request's token estimate alone exceeds a TPM, so it can
	// never be admitted (retrying does not help).
	TooLarge bool
	// Reset is when the current window ends.
	Reset    time.Time
	Requests Quota
	Tokens   Quota
	// Used is the refusing subject's usage (when refused).
	Used Usage
}

// Ticket is what Correct needs to fix an admitted request's token count.
type Ticket struct {
	window   int64
	group    string
	subjects []Subject
	estimate int64
}

// Limiter applies limits over a Store.
type Limiter struct {
	store Store
	now   func() time.Time
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// New returns a Limiter over store.
func New(store Store, opts ...Option) *Limiter {
	l := &Limiter{store: store, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Admit charges one request with an estimate of tokens (prompt plus
// output cap) to every subject with a limit, or refuses it. Subjects
// without limits are ignored; with none left, Admit allows without a
// backend call. A backend error is returned with a zero Decision.
func (l *Limiter) Admit(ctx context.Context, group string, subjects []Subject, tokens int64) (Decision, Ticket, error) {
	if tokens < 0 {
		tokens = 0
	}
	limited := make([]Subject, 0, len(subjects))
	for _, s := range subjects {
		if s.Limits.RPM > 0 || s.Limits.TPM > 0 {
			limited = append(limited, s)
		}
	}
	now := l.now()
	window := now.Unix() / int64(Window/time.Second)
	d := Decision{Allowed: true, Reset: time.Unix((window+1)*int64(Window/time.Second), 0)}
	if len(limited) == 0 {
		return d, Ticket{}, nil
	}
	for _, s := range limited {
		if s.Limits.TPM > 0 && tokens > s.Limits.TPM {
			// Never fits: refuse without charging or asking the backend.
			d.Allowed, d.Kind, d.Subject, d.TooLarge = false, TPM, s, true
			d.Tokens = Quota{Limit: s.Limits.TPM, Remaining: s.Limits.TPM}
			return d, Ticket{}, nil
		}
	}
	used, ok, err := l.store.Take(ctx, window, group, limited, tokens)
	if err != nil {
		return Decision{}, Ticket{}, err
	}
	d.Allowed = ok
	for i, s := range limited {
		u := used[i]
		if !ok && d.Kind == "" {
			switch {
			case s.Limits.RPM > 0 && u.Requests+1 > s.Limits.RPM:
				d.Kind, d.Subject, d.Used = RPM, s, u
			case s.Limits.TPM > 0 && u.Tokens+tokens > s.Limits.TPM:
				d.Kind, d.Subject, d.Used = TPM, s, u
			}
		}
		tighten(&d.Requests, s.Limits.RPM, u.Requests)
		tighten(&d.Tokens, s.Limits.TPM, u.Tokens)
	}
	if !ok {
		return d, Ticket{}, nil
	}
	return d, Ticket{window: window, group: group, subjects: limited, estimate: tokens}, nil
}

// tighten keeps in q the limit with the least remaining.
func tighten(q *Quota, limit, used int64) {
	if limit <= 0 {
		return
	}
	rem := max(limit-used, 0)
	if q.Limit == 0 || rem < q.Remaining {
		q.Limit, q.Remaining = limit, rem
	}
}

// Correct replaces an admitted request's token estimate with the tokens it
// actually used. It does nothing when they are equal, when no subject has a
// TPM, or when the request's window has already ended.
func (l *Limiter) Correct(ctx context.Context, t Ticket, actual int64) error {
	delta := actual - t.estimate
	if delta == 0 || len(t.subjects) == 0 {
		return nil
	}
	if l.now().Unix()/int64(Window/time.Second) != t.window {
		return nil
	}
	tpm := make([]Subject, 0, len(t.subjects))
	for _, s := range t.subjects {
		if s.Limits.TPM > 0 {
			tpm = append(tpm, s)
		}
	}
	if len(tpm) == 0 {
		return nil
	}
	return l.store.Add(ctx, t.window, t.group, tpm, delta)
}

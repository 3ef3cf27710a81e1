package ratelimit

import (
	"context"
	"sync"
)

// Memory is a Store in process memory: the limits of one replica.
type Memory struct {
	mu       sync.Mutex
	window   int64 // the newest window seen; older counters are swept
	counters map[memKey]*Usage
}

type memKey struct{ group, scope, id string }

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-process Store.
func NewMemory() *Memory { return &Memory{counters: map[memKey]*Usage{}} }

func (m *Memory) advance(window int64) {
	if window > m.window {
		// A new minute: every counter belongs to a past window.
		clear(m.counters)
		m.window = window
	}
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, window int64, group string, subjects []Subject, tokens int64) ([]Usage, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(window)
	used := make([]Usage, len(subjects))
	if window < m.window {
		// A caller with a clock behind the newest window: its window is
		// gone, so it starts from zero without being stored.
		for _, s := range subjects {
			if !fits(Usage{}, s.Limits, tokens) {
				return used, false, nil
			}
		}
		for i := range used {
			used[i] = Usage{Requests: 1, Tokens: tokens}
		}
		return used, true, nil
	}
	ok := true
	for i, s := range subjects {
		if c := m.counters[memKey{group, s.Scope, s.ID}]; c != nil {
			used[i] = *c
		}
		if !fits(used[i], s.Limits, tokens) {
			ok = false
		}
	}
	if !ok {
		return used, false, nil
	}
	for i, s := range subjects {
		k := memKey{group, s.Scope, s.ID}
		c := m.counters[k]
		if c == nil {
			c = &Usage{}
			m.counters[k] = c
		}
		c.Requests++
		c.Tokens += tokens
		used[i] = *c
	}
	return used, true, nil
}

// Add implements Store.
func (m *Memory) Add(_ context.Context, window int64, group string, subjects []Subject, delta int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if window != m.window {
		return nil
	}
	for _, s := range subjects {
		if c := m.counters[memKey{group, s.Scope, s.ID}]; c != nil {
			c.Tokens = max(c.Tokens+delta, 0)
		}
	}
	return nil
}

func fits(u Usage, l Limits, tokens int64) bool {
	if l.RPM > 0 && u.Requests+1 > l.RPM {
		return false
	}
	if l.TPM > 0 && u.Tokens+tokens > l.TPM {
		return false
	}
	return true
}

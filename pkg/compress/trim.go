package compress

// trim marks the messages that fit in budget tokens and returns how many it
// dropped. Always kept: system and developer messages, the last user
// message and everything after it (the current turn with its tool calls and
// results). The rest of the history is cut into turns (a user message and
// what follows it up to the next user message; a turn also absorbs any
// earlier turn holding a tool call whose result it contains) and whole turns
// are kept newest first while they fit. The first turn that does not fit is
// dropped with every older one, so the history that remains is contiguous
// and a tool call never loses its result. When the kept minimum alone is
// over the budget, it is sent as is.
func trim(msgs []message, budget int64, count Counter) int {
	for i := range msgs {
		m := &msgs[i]
		m.keep = true
		m.tokens = 0
		if m.extra != "" {
			m.tokens += count(m.extra)
		}
		for _, p := range m.texts {
			m.tokens += count(p.out)
		}
	}
	lastUser := -1
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].role == "user" {
			lastUser = i
			break
		}
	}
	if lastUser < 0 {
		return 0 // no user turn to anchor on: leave the conversation whole
	}

	turn := turns(msgs)
	protected := turn[lastUser]
	// Once a tool message is merged across a user message the protected
	// tail may start earlier than lastUser.
	for i := lastUser; i < len(msgs); i++ {
		protected = min(protected, turn[i])
	}

	var total int64
	for i := range msgs {
		if i >= protected || pinned(msgs[i].role) {
			total += msgs[i].tokens
		}
	}
	// Walk the droppable turns newest first.
	cut := -1 // messages before this index (and not pinned) are dropped
	for end := protected; end > 0; {
		first := turn[end-1]
		var t int64
		for k := first; k < end; k++ {
			if !pinned(msgs[k].role) {
				t += msgs[k].tokens
			}
		}
		if total+t > budget {
			cut = end
			break
		}
		total += t
		end = first
	}
	if cut < 0 {
		return 0
	}
	dropped := 0
	for k := 0; k < cut; k++ {
		if !pinned(msgs[k].role) {
			msgs[k].keep = false
			dropped++
		}
	}
	return dropped
}

// pinned roles are never trimmed.
func pinned(role string) bool { return role == "system" || role == "developer" }

// turns returns, for each message, the index of the first message of its
// turn: a user message starts a turn (messages before the first user message
// form one), and a tool result whose call sits in an earlier turn joins every
// turn from the call's to its own into one. One linear sweep: each turn is an
// interval, a tool result adds the interval from its call's turn to the end
// of its own, and overlapping intervals merge.
func turns(msgs []message) []int {
	n := len(msgs)
	start := make([]int, n) // natural turn start of each message
	s := 0
	for i := range msgs {
		if msgs[i].role == "user" {
			s = i
		}
		start[i] = s
	}
	// reach[k]: the furthest message an interval starting at k covers.
	reach := make([]int, n)
	for i := range reach {
		reach[i] = -1
	}
	natEnd := make([]int, n)
	for i := n - 1; i >= 0; {
		s := start[i]
		reach[s], natEnd[s] = i, i // the natural turn [s, i]
		i = s - 1
	}
	callAt := map[string]int{}
	for i := range msgs {
		for _, id := range msgs[i].calls {
			callAt[id] = i
		}
		if ref := msgs[i].callRef; ref != "" {
			if c, ok := callAt[ref]; ok && start[c] < start[i] {
				// Up to the end of the result's own (natural) turn.
				reach[start[c]] = max(reach[start[c]], natEnd[start[i]])
			}
		}
	}
	turn := make([]int, n)
	g, e := 0, -1
	for k := 0; k < n; k++ {
		if k > e {
			g = k
		}
		e = max(e, reach[k])
		turn[k] = g
	}
	return turn
}

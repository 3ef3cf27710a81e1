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

	// turn[i] is the index of the first message of message i's turn.
	turn := make([]int, len(msgs))
	start := 0
	for i := range msgs {
		if msgs[i].role == "user" {
			start = i
		}
		turn[i] = start
	}
	// A tool result pulls its call's turn into its own.
	callAt := map[string]int{}
	for i := range msgs {
		for _, id := range msgs[i].calls {
			callAt[id] = i
		}
	}
	for i := range msgs {
		ref := msgs[i].callRef
		if ref == "" {
			continue
		}
		c, ok := callAt[ref]
		if !ok || turn[c] >= turn[i] {
			continue
		}
		from := turn[c]
		for k := from; k <= i; k++ {
			turn[k] = from
		}
		// Later messages of the old turn follow it.
		for k := i + 1; k < len(msgs) && msgs[k].role != "user"; k++ {
			turn[k] = from
		}
	}
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

package compress

// dedupe drops, from the kept messages, every paragraph or fenced block of
// at least MinDedupeBytes that repeats one seen earlier in the kept
// conversation, and returns how many it dropped. The first copy always
// stays. System and developer messages and the last user message are never
// shortened (their blocks still count as seen). A text whose every block was
// a repeat becomes Omitted.
func dedupe(msgs []message) int {
	lastUser := -1
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].keep && msgs[i].role == "user" {
			lastUser = i
			break
		}
	}
	seen := map[string]struct{}{}
	dropped := 0
	for i := range msgs {
		m := &msgs[i]
		if !m.keep {
			continue
		}
		fixed := pinned(m.role) || i == lastUser
		for j := range m.texts {
			p := &m.texts[j]
			blocks := splitBlocks(p.out)
			kept := blocks[:0]
			n := 0
			for _, b := range blocks {
				if len(b.text) < MinDedupeBytes {
					kept = append(kept, b)
					continue
				}
				if _, dup := seen[b.text]; dup && !fixed {
					n++
					continue
				}
				seen[b.text] = struct{}{}
				kept = append(kept, b)
			}
			if n == 0 {
				continue
			}
			dropped += n
			if len(kept) > 0 {
				kept[0].blankBefore = false
			}
			p.out = joinBlocks(kept)
			if p.out == "" {
				p.out = Omitted
			}
		}
	}
	return dropped
}

package cache

// The difference guard runs after the vector search accepted a candidate. It
// vetoes the hit when the two prompts differ in something that usually
// changes the answer even though the vectors are close: numbers, named
// entities, negation, or a rare content word present in only one of them.

// Veto reasons reported by the guard (also metric label values).
const (
	VetoNumber   = "number"
	VetoEntity   = "entity"
	VetoNegation = "negation"
	VetoContent  = "content_word"
	VetoQuestion = "question_type"
	// VetoVerifier: the learned verifier scored the pair below its threshold.
	VetoVerifier = "verifier"
)

// guardRareIDF is the IDF at or above which a word substituted by another
// vetoes a hit: words never seen in the table's corpus (typically names and
// technical terms) carry the question's subject.
const guardRareIDF = builtinUnknown

// promptFacts are the guard's view of one prompt.
type promptFacts struct {
	words    stemSet // stems of all words
	numbers  map[string]bool
	entities []string // stems of capitalised words not at a sentence start
	content  []string // stems of words with IDF >= guardRareIDF
	negation int
	wh       uint8 // bit set of question words, see whBit
}

// whBit maps question words to bits. "what" and "which" are left out: they
// are used interchangeably ("What is the best..." / "Which is the best...").
func whBit(w string, mode int) uint8 {
	if mode == 0 {
		return 0
	}
	switch w {
	case "why":
		return 1
	case "where":
		return 2
	case "when":
		return 4
	case "who", "whom", "whose":
		return 8
	case "how":
		if mode >= 2 {
			return 16
		}
	case "what", "which":
		if mode >= 3 {
			return 32
		}
	}
	return 0
}

// whMask keeps the question-word bits that guard mode records (see whBit).
func whMask(mode int) uint8 {
	switch mode {
	case 0:
		return 0
	case 1:
		return 1 | 2 | 4 | 8
	case 2:
		return 1 | 2 | 4 | 8 | 16
	}
	return 1 | 2 | 4 | 8 | 16 | 32
}

// asMode returns the facts as factsOfP with a lower question-word mode would
// have computed them (the other facts do not depend on the mode).
func (f promptFacts) asMode(mode int) promptFacts {
	f.wh &= whMask(mode)
	return f
}

func isNegation(w string) bool {
	switch w {
	case "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere",
		"without", "cannot", "cant", "can't", "don't", "dont", "doesn't", "doesnt", "didn't",
		"didnt", "isn't", "isnt", "aren't", "arent", "wasn't", "wasnt", "weren't", "won't",
		"wont", "wouldn't", "shouldn't", "couldn't", "haven't", "hasn't", "hadn't", "mustn't",
		"nor't", "except", "excluding", "unlike":
		return true
	}
	return false
}

// guardParams select the rules; tuned on the cache-qqp training split.
type guardParams struct {
	rareIDF      float64 // content-word rule threshold (0 disables the rule)
	substitution bool    // content/entity rules need a difference on both sides
	negation     bool
	entities     bool
	wh           int // 0 off, 1 why/where/when/who, 2 + how, 3 + what/which
}

func defaultGuardParams() guardParams {
	return guardParams{rareIDF: guardRareIDF, substitution: true, negation: true, entities: true, wh: 1}
}

func factsOf(text string, idf IDF) promptFacts {
	return factsOfP(text, idf, defaultGuardParams())
}

func factsOfP(text string, idf IDF, gp guardParams) promptFacts {
	return factsFrom(analyse(text, idf, nil), idf, gp)
}

// differ returns a veto reason, or "" when the prompts may share an answer.
func differ(a, b promptFacts) string {
	return differP(a, b, defaultGuardParams())
}

func differP(a, b promptFacts, gp guardParams) string {
	if len(a.numbers) != len(b.numbers) {
		return VetoNumber
	}
	for n := range a.numbers {
		if !b.numbers[n] {
			return VetoNumber
		}
	}
	if a.wh != b.wh {
		return VetoQuestion
	}
	if gp.negation && (a.negation > 0) != (b.negation > 0) {
		return VetoNegation
	}
	combine := func(x, y bool) bool {
		if gp.substitution {
			return x && y
		}
		return x || y
	}
	if gp.entities && combine(missing(a.entities, b.words), missing(b.entities, a.words)) {
		return VetoEntity
	}
	if combine(missing(a.content, b.words), missing(b.content, a.words)) {
		return VetoContent
	}
	return ""
}

// missing reports whether any of words has no counterpart in set: neither
// the same stem nor a word sharing a long prefix (spelling variants).
func missing(words []string, set stemSet) bool {
	for _, w := range words {
		if !set.has(w) && !set.prefixMatch(w) {
			return true
		}
	}
	return false
}

// GuardVeto runs the difference guard on two prompts and returns the veto
// reason ("number", "entity", "negation", "content_word"), or "" when the
// guard lets the hit through. idf is the table the content-word rule reads
// (DefaultIDF for the shipped one).
func GuardVeto(a, b string, idf IDF) string {
	return differ(factsOf(a, idf), factsOf(b, idf))
}

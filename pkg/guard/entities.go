package guard

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Entity types reported by the entities detector.
const (
	DetectorEntities = "entities"
	TypePerson       = "PERSON"
	TypeAddress      = "ADDRESS"
	TypeLocation     = "LOCATION"
)

//go:embed model/gazetteer.txt.gz
var gazetteerGz []byte

// gazetteer holds lower-cased name and place lists (model/gazetteer.mjs
// builds the file from public, MIT-licensed package data).
type gazetteer struct {
	lex           map[string]lexBits // lower-cased word or place name -> classes
	maxPlaceWords int
}

// lexBits are the classes of a lexicon entry.
type lexBits uint16

const (
	lexFirst lexBits = 1 << iota
	lexLast
	lexPlace
	lexWord // a common English word
	lexTitle
	lexStreetAfter
	lexStreetBefore
	lexUnit
	lexPrep
	lexSuffix // a street-name suffix of compounds ("gasse")
)

var (
	gazOnce sync.Once
	gaz     *gazetteer
	gazErr  error
)

func loadGazetteer() (*gazetteer, error) {
	gazOnce.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(gazetteerGz))
		if err != nil {
			gazErr = fmt.Errorf("guard: gazetteer: %w", err)
			return
		}
		g := &gazetteer{lex: make(map[string]lexBits, 64<<10)}
		sections := map[string]lexBits{"first": lexFirst, "last": lexLast, "place": lexPlace, "word": lexWord, "title": lexTitle}
		var cur lexBits
		isPlace := false
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			line := sc.Text()
			if name, ok := strings.CutPrefix(line, "# "); ok {
				cur, isPlace = sections[name], name == "place"
				continue
			}
			if cur == 0 || line == "" {
				continue
			}
			key := strings.ToLower(strings.TrimSuffix(line, "."))
			g.lex[key] |= cur
			if isPlace {
				g.maxPlaceWords = max(g.maxPlaceWords, strings.Count(key, " ")+1)
			}
		}
		if err := sc.Err(); err != nil {
			gazErr = fmt.Errorf("guard: gazetteer: %w", err)
			return
		}
		g.maxPlaceWords = min(g.maxPlaceWords, 5)
		for _, l := range []struct {
			words []string
			bit   lexBits
		}{{streetAfter, lexStreetAfter}, {streetBefore, lexStreetBefore}, {streetSuffixes, lexSuffix}, {unitWords, lexUnit}, {placePreps, lexPrep}, {stopWords, lexWord}} {
			for _, w := range l.words {
				g.lex[w] |= l.bit
			}
		}
		gaz = g
	})
	return gaz, gazErr
}

// Street words: types written after the name ("Bond Street") and before
// it ("Rue de Tanger", "Via Roma"), and suffixes of compound street names
// ("Ditscheinergasse", "Koskikatu"). Written from common address formats
// of English, German, Dutch, Nordic, Romance, Slavic and Hungarian
// speaking countries.
var (
	streetAfter = words("street", "st", "avenue", "ave", "av", "road", "rd", "lane", "ln", "drive", "dr", "boulevard", "blvd",
		"court", "ct", "place", "pl", "square", "sq", "terrace", "ter", "highway", "hwy", "parkway", "pkwy", "way", "crescent",
		"cres", "close", "circle", "cir", "trail", "trl", "alley", "row", "mews", "grove", "gardens", "hill", "park", "walk",
		"path", "pike", "plaza", "point", "ridge", "run", "view", "vista", "green", "gate", "wharf", "quay", "esplanade",
		"promenade", "rise", "loop", "expressway", "freeway", "causeway", "crossing", "junction", "bypass",
		"straße", "strasse", "str", "weg", "allee", "platz", "gasse", "ring", "damm", "ufer", "chaussee",
		"laan", "straat", "plein", "gracht", "kade", "dijk", "singel", "steeg",
		"vej", "gade", "vägen", "väg", "gatan", "gata", "veien", "vei", "veg", "gate", "katu", "tie", "kuja", "polku",
		"út", "utca", "tér", "körút", "ulica", "ul", "aleja", "ulice", "náměstí", "třída", "cesta", "ulitsa", "sokak", "caddesi")
	streetBefore = words("rue", "via", "viale", "piazza", "corso", "largo", "vicolo", "strada", "calle", "avenida", "av",
		"avda", "paseo", "plaza", "camino", "carrer", "avinguda", "rua", "travessa", "largo", "praça", "estrada", "rodovia",
		"avenue", "boulevard", "bd", "chemin", "allée", "impasse", "quai", "place", "route", "cours", "ulica", "ul", "aleja",
		"plac", "osiedle", "strada", "calea", "bulevardul", "aleea", "piata", "odos", "leoforos", "platia", "jalan", "jl")
	streetSuffixes = []string{"straße", "strasse", "gasse", "weg", "allee", "platz", "ring", "damm", "ufer",
		"laan", "straat", "plein", "gracht", "kade", "dijk", "singel", "steeg", "vej", "gade", "vägen", "gatan", "veien",
		"veg", "gata", "katu", "tie", "kuja", "polku", "utca", "út", "ulica", "ulice", "street", "road", "avenue", "lane"}
	unitWords  = words("apt", "apartment", "suite", "ste", "unit", "flat", "floor", "fl", "room", "rm", "building", "bldg", "box", "po", "p.o", "#")
	placePreps = words("in", "from", "at", "to", "near", "of", "visit", "visiting", "around", "outside", "across")
	// locCues admit a capitalised word that is in no place list.
	locCues = []string{"grew up in ", "born in ", "based in ", "lives in ", "live in ", "living in ", "moved to ", "moved from ",
		"moved here from ", "arrived at ", "arrived in ", "i'm in ", "i am in ", "originally from ", "coming to ", "trip to ",
		"travel to ", "travelling to ", "traveling to ", "flew to ", "flying to ", "located in ", "visiting ", "stay in ", "staying in "}
	// strongCues admit a capitalised word that is in no name list.
	strongCues = []string{"name is ", "named ", "name's ", "called ", "dear ", "hello ", "hi ", "this is ", "says ", "said ",
		"asked ", "replied ", "calls me ", "call me ", "named him ", "named her ", "founders: ", "founder ", "ceo "}
	nameCues = []string{"name is ", "named ", "name's ", "called ", "i am ", "i'm ", "this is ", "dear ", "hi ", "hello ", "thanks ", "thank you ", "contact ", "ask ", "with ", "by ", "and "}
)

func words(w ...string) []string { return w }

// stopWords are frequent English words that are also given names or
// place names in the lists ("Will", "Can", "May", "Name").
var stopWords = words("a", "an", "the", "and", "or", "but", "if", "so", "can", "could", "will", "would", "shall", "should",
	"may", "might", "must", "do", "does", "did", "is", "are", "was", "were", "be", "been", "have", "has", "had", "i", "you",
	"he", "she", "it", "we", "they", "me", "him", "her", "us", "them", "my", "your", "his", "its", "our", "their", "this",
	"that", "these", "those", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "all", "any", "each",
	"every", "some", "no", "not", "yes", "one", "two", "three", "first", "last", "next", "new", "old", "good", "great",
	"name", "names", "time", "day", "date", "year", "week", "month", "today", "please", "thanks", "hello", "hi", "dear",
	"sir", "madam", "tone", "person", "people", "man", "woman", "city", "state", "country", "street", "road", "university",
	"college", "school", "company", "group", "bank", "park", "center", "centre", "north", "south", "east", "west", "mark",
	"bill", "sue", "rob", "pat", "grant", "hope", "faith", "joy", "rose", "lily", "iris", "ruby", "amber", "summer", "winter",
	"autumn", "spring", "april", "june", "july", "august", "march", "january", "february", "september", "october",
	"november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "christian",
	"jesus", "god", "lord", "king", "queen", "prince", "princess", "royal", "president", "doctor", "professor", "page",
	"read", "write", "add", "find", "give", "take", "make", "let", "get", "set", "see", "say", "tell", "ask", "use",
	"here", "there", "then", "now", "also", "just", "only", "very", "much", "more", "most", "many", "few", "other",
	"such", "than", "too", "up", "down", "out", "over", "under", "about", "after", "before", "into", "with", "without",
	"for", "from", "of", "on", "in", "at", "by", "to", "as", "per", "via", "re", "dam", "el", "la", "le", "de", "del", "san",
	"santa", "st", "saint", "port", "fort", "mount", "lake", "river", "island", "islands", "bay", "beach", "valley", "heights")

// entitiesDetector finds person names, street addresses and place names
// with gazetteers (first and last names, places, titles, common English
// words to rule out) and an address grammar: house number, street name
// with a street type or compound suffix, then optional unit, city, state,
// postcode and country parts.
type entitiesDetector struct{ g *gazetteer }

func newEntitiesDetector() (*entitiesDetector, error) {
	g, err := loadGazetteer()
	if err != nil {
		return nil, err
	}
	return &entitiesDetector{g: g}, nil
}

func (*entitiesDetector) Name() string { return DetectorEntities }

func (*entitiesDetector) Types() []string { return []string{TypePerson, TypeAddress, TypeLocation} }

func entity(typ string, start, end int, score float64) Finding {
	return Finding{Detector: DetectorEntities, Type: typ, Start: start, End: end, Score: score}
}

// token is a word (letters, inner ' - and an initial's dot) or a number.
type token struct {
	s, e   int
	num    bool // digits, optionally followed by one letter ("12B")
	upper  bool // starts with an upper-case letter
	caps   bool // every letter upper-case
	lowers bool // every letter lower-case
}

// nextToken returns the first token at or after i; ok is false at the end.
// gap reports what lies between i and the token: 0 nothing or spaces,
// 1 a comma, 2 a line break, 3 other punctuation.
func nextToken(text string, i int) (t token, gap int, ok bool) {
	for i < len(text) {
		c := text[i]
		if c < utf8.RuneSelf {
			if isAlnum(c) {
				break
			}
			switch c {
			case ',', ';':
				gap = max(gap, 1)
			case '\n', '\r':
				gap = max(gap, 2)
			case ' ', '\t', '>', '-', '"', '(', ')':
			case '.':
				// An abbreviation's dot ("ul. Posejdona", "St. John")
				// does not separate; a sentence's dot does.
				if i == 0 || !isAlpha(text[i-1]) || i+1 >= len(text) || text[i+1] != ' ' {
					gap = 3
				}
			default:
				gap = 3
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		if unicode.IsLetter(r) {
			break
		}
		gap = 3
		i += n
	}
	if i >= len(text) {
		return token{}, gap, false
	}
	t.s = i
	if isDigit(text[i]) {
		for i < len(text) && isDigit(text[i]) {
			i++
		}
		if i < len(text) && isAlpha(text[i]) && (i+1 >= len(text) || !isAlnum(text[i+1])) {
			i++
		}
		t.e, t.num = i, true
		return t, gap, true
	}
	t.caps, t.lowers = true, true
	first := true
	for i < len(text) {
		if c := text[i]; isAlpha(c) { // ASCII fast path
			up := c <= 'Z'
			if first {
				t.upper, first = up, false
			}
			if up {
				t.lowers = false
			} else {
				t.caps = false
			}
			i++
			continue
		}
		r, n := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(text[i:])
		}
		switch {
		case unicode.IsLetter(r) || unicode.Is(unicode.Mn, r):
			if first {
				t.upper = unicode.IsUpper(r)
				first = false
			}
			if unicode.IsUpper(r) {
				t.lowers = false
			} else if unicode.IsLower(r) {
				t.caps = false
			}
			i += n
			continue
		case (r == '\'' || r == '-' || r == '’') && i+n < len(text):
			if r2, _ := utf8.DecodeRuneInString(text[i+n:]); unicode.IsLetter(r2) {
				i += n
				continue
			}
		case r == '.' && i-t.s == 1:
			i++ // an initial: "J."
		}
		break
	}
	t.e = i
	return t, gap, true
}

// lowerKey writes the lower-case form of s into buf and returns it; ok is
// false when s does not fit.
func lowerKey(buf []byte, s string) ([]byte, bool) {
	b := buf[:0]
	for _, r := range s {
		if r < utf8.RuneSelf {
			c := byte(r)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if len(b) == cap(b) {
				return nil, false
			}
			b = append(b, c)
			continue
		}
		r = unicode.ToLower(r)
		if len(b)+utf8.RuneLen(r) > cap(b) {
			return nil, false
		}
		b = utf8.AppendRune(b, r)
	}
	return b, true
}

// bits returns the lexicon classes of s (case-insensitive, a final '.'
// ignored).
func (d *entitiesDetector) bits(s string) lexBits {
	var buf [64]byte
	k, ok := lowerKey(buf[:], strings.TrimSuffix(s, "."))
	if !ok {
		return 0
	}
	return d.g.lex[string(k)]
}

func (d *entitiesDetector) Detect(text string, dst []Finding) []Finding {
	lowerText := !hasUpperLetter(text)
	prevEnd := 0
	var prev token
	for i := 0; ; {
		t, gap, ok := nextToken(text, i)
		if !ok {
			break
		}
		i = t.e
		if t.num && hasCue(text, t.s, zipCues) && t.e-t.s >= 4 {
			e := t.e
			if e+1 < len(text) && text[e] == '-' && isDigit(text[e+1]) {
				_, _, e = nextNumber(text, e+1)
			}
			dst = append(dst, entity(TypeAddress, t.s, e, 0.6))
			i, prev = e, token{}
			continue
		}
		if !t.num && t.upper {
			if e, ok := militaryAddress(text, t); ok {
				dst = append(dst, entity(TypeAddress, t.s, e, 0.7))
				i, prev = e, token{}
				continue
			}
		}
		if t.num {
			if e, ok := d.address(text, t, lowerText); ok {
				dst = append(dst, entity(TypeAddress, t.s, e, 0.7))
				i, prev = e, token{}
				continue
			}
		} else if t.upper || lowerText {
			if e, ok := d.streetFirst(text, t); ok {
				dst = append(dst, entity(TypeAddress, t.s, e, 0.65))
				i, prev = e, token{}
				continue
			}
			sentenceStart := gap >= 2 || prevEnd == 0 || endsSentence(text[prevEnd:t.s])
			if s, e, ok := d.person(text, t, prev, sentenceStart, lowerText); ok {
				dst = append(dst, entity(TypePerson, s, e, 0.6))
				i, prev, prevEnd = e, token{}, e
				continue
			}
			if e, ok := d.location(text, t, prev, sentenceStart, lowerText); ok {
				dst = append(dst, entity(TypeLocation, t.s, e, 0.6))
				i, prev, prevEnd = e, token{}, e
				continue
			}
		}
		prev, prevEnd = t, t.e
	}
	return dst
}

func hasUpperLetter(text string) bool {
	for i := 0; i < len(text); i++ {
		if isUpper(text[i]) {
			return true
		}
	}
	return false
}

func endsSentence(between string) bool {
	return strings.ContainsAny(between, ".!?:") || strings.Contains(between, "\n")
}

// nameWord reports a capitalised token that may continue a name: a known
// first or last name, an initial, or an unknown capitalised word that is
// not a common English word, a place or a street word.
func (d *entitiesDetector) nameWord(text string, t token, lowerText, unknown bool) bool {
	if t.num || !(t.upper || lowerText && t.lowers) {
		return false
	}
	w := text[t.s:t.e]
	if utf8.RuneCountInString(strings.TrimSuffix(w, ".")) == 1 {
		return t.upper && w != "I" // an initial, not the pronoun
	}
	b := d.bits(possessive(w))
	if b&(lexLast|lexFirst) != 0 {
		return b&lexWord == 0
	}
	if !unknown || !t.upper || t.caps || b != 0 {
		return false
	}
	after, before, compound := d.streetWord(w)
	return !after && !before && !compound
}

// person matches [title] first-name [middle/initial] [last-name...].
func (d *entitiesDetector) person(text string, t token, prev token, sentenceStart, lowerText bool) (start, end int, ok bool) {
	w := text[t.s:t.e]
	if t.caps && len(w) > 3 {
		return 0, 0, false // headings, acronyms
	}
	cue := hasCue(text, t.s, nameCues)
	wb := d.bits(possessive(w))
	isFirst := wb&lexFirst != 0
	isLast := wb&lexLast != 0
	common := wb&lexWord != 0
	if wb&lexTitle != 0 && (t.upper || lowerText) {
		// Title: the name is the title and the capitalised words after it.
		n, gap, ok := nextToken(text, t.e)
		if !ok || n.num || gap != 0 || !(n.upper || lowerText && n.lowers && d.bits(text[n.s:n.e])&lexWord == 0) {
			return 0, 0, false
		}
		return t.s, d.extendName(text, n, lowerText, true), true
	}
	if !t.upper && len(w) < 3 {
		return 0, 0, false // split contractions ("i'm" written "i\'m")
	}
	if t.upper && !common && wb&(lexPlace|lexTitle) == 0 && hasCue(text, t.s, strongCues) {
		// "My name is Kenjirou": a cue admits an unknown name.
		return t.s, d.extendName(text, t, lowerText, true), true
	}
	if !isFirst && !(isLast && (cue || prev.s != prev.e && d.bits(text[prev.s:prev.e])&lexTitle != 0)) {
		return 0, 0, false
	}
	e := d.extendName(text, t, lowerText, !common)
	if e > t.e {
		return t.s, e, true
	}
	// A single word: not a common English word ("Will", "May") unless a
	// cue says a name follows; not a place name unless cued.
	if (common || wb&lexPlace != 0) && !cue {
		return 0, 0, false
	}
	if sentenceStart && !cue && isLast && !isFirst && !d.listOfNames(text, t.e, lowerText) {
		return 0, 0, false
	}
	return t.s, t.e, true
}

// listOfNames reports a known name right after e, joined by ", " or
// " and " ("Warren and Bailey", "Smith, Stanton"): surnames in a list.
func (d *entitiesDetector) listOfNames(text string, e int, lowerText bool) bool {
	rest := text[e:]
	switch {
	case strings.HasPrefix(rest, ", "):
		e += 2
	case strings.HasPrefix(rest, " and "):
		e += 5
	default:
		return false
	}
	n, _, ok := nextToken(text, e)
	return ok && n.s == e && d.nameWord(text, n, lowerText, false)
}

// hasCue reports whether one of cues (lower-case) ends at s.
func hasCue(text string, s int, cues []string) bool {
	if s < 2 || text[s-1] != ' ' {
		return false // every cue ends with a space
	}
	last := text[s-2] | 0x20 // lower-cases ASCII letters
	for _, c := range cues {
		if s >= len(c) && c[len(c)-2] == last && strings.EqualFold(text[s-len(c):s], c) {
			return true
		}
	}
	return false
}

// possessive strips a trailing "'s" ("Liam's").
func possessive(w string) string {
	if strings.HasSuffix(w, "'s") || strings.HasSuffix(w, "’s") {
		return w[:strings.LastIndexAny(w, "'’")]
	}
	return w
}

// extendName extends a name from token t over following name words
// separated by single spaces (up to 4 words in all). With unknown, a
// capitalised word that is in no list (not a common word, place or street
// word) also counts as a surname ("Peter Pham").
func (d *entitiesDetector) extendName(text string, t token, lowerText, unknown bool) int {
	e := t.e
	for k := 0; k < 3; k++ {
		n, gap, ok := nextToken(text, e)
		if !ok || gap != 0 || n.s-e > 2 || !d.nameWord(text, n, lowerText, unknown) {
			break
		}
		e = n.e
	}
	return e
}

// location matches the longest place name (up to maxPlaceWords words).
// A single word that is also a common English word ("Nice", "Mobile")
// needs a preposition before it ("in Nice") or capitals in lower-case text.
func (d *entitiesDetector) location(text string, t token, prev token, sentenceStart, lowerText bool) (int, bool) {
	best := -1
	e := t.e
	for k := 0; k < d.g.maxPlaceWords; k++ {
		if d.bits(text[t.s:e])&lexPlace != 0 {
			best = e
		}
		n, gap, ok := nextToken(text, e)
		if !ok || gap != 0 || n.s-e != 1 || n.num || !(n.upper || n.lowers && (lowerText || isConnector(text[n.s:n.e]))) {
			break
		}
		e = n.e
	}
	if best < 0 {
		if !(t.upper || lowerText) || d.bits(text[t.s:t.e])&(lexWord|lexTitle) != 0 || !hasCue(text, t.s, locCues) {
			return 0, false
		}
		// "grew up in Kalatsova": a cue admits an unknown place name.
		e := t.e
		for k := 0; k < 3; k++ {
			n, gap, ok := nextToken(text, e)
			if !ok || gap != 0 || n.s-e != 1 || n.num || !(n.upper || isConnector(text[n.s:n.e]) || lowerText && n.lowers && d.bits(text[n.s:n.e])&lexWord == 0) {
				break
			}
			e = n.e
		}
		return e, true
	}
	if best == t.e {
		w := text[t.s:t.e]
		prep := prev.s != prev.e && d.bits(text[prev.s:prev.e])&lexPrep != 0
		if d.bits(w)&lexWord != 0 && !prep && !t.caps {
			return 0, false
		}
		if !prep && d.bits(w)&lexFirst != 0 {
			return 0, false
		}
	}
	return best, true
}

// isConnector reports lower-case words inside names of places and streets.
func isConnector(w string) bool {
	switch w {
	case "de", "la", "le", "les", "del", "della", "di", "da", "do", "dos", "das", "du", "des", "van", "von", "der", "den", "het", "y", "e", "am", "an", "im", "sur", "sous", "en", "upon", "on", "the":
		return true
	}
	return false
}

// streetWord classifies a word: after (a street type written after the
// name), before (written before it), compound (a name ending in a street
// suffix, "Ditscheinergasse").
func (d *entitiesDetector) streetWord(w string) (after, before, compound bool) {
	var buf [64]byte
	k, ok := lowerKey(buf[:], strings.TrimSuffix(w, "."))
	if !ok {
		return false, false, false
	}
	b := d.g.lex[string(k)]
	after, before = b&lexStreetAfter != 0, b&lexStreetBefore != 0
	if !after && !before && len(k) > 6 {
		for l := 2; l <= 7 && l+3 <= len(k); l++ {
			if d.g.lex[string(k[len(k)-l:])]&lexSuffix != 0 {
				return false, false, true
			}
		}
	}
	return after, before, false
}

// address matches from a house number: number [number] (street-before
// words | words street-after | compound) [number], then the trailing
// parts (address tail).
func (d *entitiesDetector) address(text string, num token, lowerText bool) (int, bool) {
	e := num.e
	n, gap, ok := nextToken(text, e)
	if ok && n.num && gap == 0 {
		e = n.e // "224 4966 Bond Street", "Apt. 722 20 40 rue ..."
		n, gap, ok = nextToken(text, e)
	}
	if !ok || gap > 0 || n.num {
		return 0, false
	}
	words, street, named := 0, false, false
	for ok && words < 6 && gap == 0 && !n.num {
		w := text[n.s:n.e]
		after, before, compound := d.streetWord(w)
		compound = compound && n.upper // "Ditscheinergasse", not "measuring"
		// In lower-case text, after "rue", "via", "ul." a lower-case name
		// is part of the street.
		lowerName := lowerText && street && n.lowers && !isConnector(w) && d.bits(w)&lexWord == 0
		if !(n.upper || lowerName || n.lowers && (isConnector(w) || after || before)) {
			break
		}
		named = named || (n.upper || lowerName) && n.e-n.s > 1 && !before
		words++
		e = n.e
		if compound || after && words > 1 {
			street = true
			break
		}
		if before && words == 1 {
			street = true
		}
		n, gap, ok = nextToken(text, e)
	}
	if street && named {
		return d.addressTail(text, e), true
	}
	// "57 Askelund 1\n Suite 322\n Boeslunde": number, name, number is an
	// address when a unit or two more parts follow, or a cue precedes it.
	if words == 0 || words > 4 || !named || !ok || !n.num || gap != 0 || n.s != e+1 || text[e] != ' ' {
		return 0, false
	}
	e = n.e
	tail, parts, unit := d.tail(text, e)
	if unit || parts >= 2 || addressCue(text, num.s) {
		return tail, true
	}
	return 0, false
}

// zipCues announce a postcode.
var zipCues = []string{"zip code is ", "zip code ", "zip: ", "zip ", "zipcode ", "postcode ", "postal code ", "postcode: ", "plz "}

func nextNumber(text string, i int) (int, int, int) {
	s := i
	for i < len(text) && isDigit(text[i]) {
		i++
	}
	return s, i - s, i
}

// militaryAddress matches US military mail addresses: "PSC 9236, Box 1684,
// APO AP 02137", "USS Dam, FPO AE 94560", "Unit 1783 Box 3210 DPO AP 99855".
func militaryAddress(text string, t token) (int, bool) {
	if c := text[t.s] | 0x20; c != 'p' && c != 'u' && c != 'c' {
		return 0, false
	}
	if !slices.ContainsFunc([]string{"psc", "uss", "usns", "usnv", "uscgc", "unit", "cmr"}, func(w string) bool { return strings.EqualFold(w, text[t.s:t.e]) }) {
		return 0, false
	}
	lim := min(len(text), t.e+64)
	for _, m := range [...]string{"APO ", "FPO ", "DPO ", "apo ", "fpo ", "dpo "} {
		k := strings.Index(text[t.e:lim], m)
		if k < 0 {
			continue
		}
		p := t.e + k + 4
		if p+8 <= len(text) && isAlpha(text[p]) && isAlpha(text[p+1]) && text[p+2] == ' ' {
			if _, n, e := nextNumber(text, p+3); n == 5 {
				return e, true
			}
		}
	}
	return 0, false
}

// addressCue reports a word announcing an address in the 48 bytes before s.
func addressCue(text string, s int) bool {
	w := text[max(0, s-48):s]
	for _, c := range [...]string{"address", "live", "lives", "located", "send", "ship", "deliver", "meet", "moved", "arrived", "at "} {
		if containsFold(w, c) {
			return true
		}
	}
	return false
}

// streetFirst matches addresses written name first: "Via Roma 131",
// "Ditscheinergasse 1", "Bond Street 5", with the house number required.
func (d *entitiesDetector) streetFirst(text string, t token) (int, bool) {
	_, before, compound := d.streetWord(text[t.s:t.e])
	e := t.e
	if before {
		words := 0
		for words < 4 {
			n, gap, ok := nextToken(text, e)
			if !ok || gap != 0 || n.num || !(n.upper || isConnector(text[n.s:n.e])) {
				break
			}
			e = n.e
			words++
		}
		if words == 0 {
			return 0, false
		}
	} else if !compound {
		return 0, false
	}
	n, gap, ok := nextToken(text, e)
	if !ok || !n.num || gap != 0 || n.s-e > 2 {
		return 0, false
	}
	return d.addressTail(text, n.e), true
}

// addressTail extends an address over what follows the street: a house
// number, unit ("Apt. 425", "Suite 258"), city, state code, postcode and
// country parts separated by spaces, commas or line breaks; it stops at a
// lower-case word or sentence punctuation.
func (d *entitiesDetector) addressTail(text string, e int) int {
	e, _, _ = d.tail(text, e)
	return e
}

// tail is addressTail that also counts the parts taken and whether one was
// a unit.
func (d *entitiesDetector) tail(text string, e int) (end, parts int, unit bool) {
	for ; parts < 8; parts++ {
		n, gap, ok := nextToken(text, e)
		if !ok || gap == 3 || n.s-e > 4 {
			return e, parts, unit
		}
		w := text[n.s:n.e]
		switch {
		case n.num:
			if n.s > 0 && text[n.s-1] == '(' || n.e+1 < len(text) && (text[n.e] == '-' || text[n.e] == '.') && isDigit(text[n.e+1]) {
				return e, parts, unit // a phone number on the next line
			}
			e = n.e
		case d.bits(w)&lexUnit != 0:
			m, _, ok := nextToken(text, n.e)
			if !ok || !m.num || m.s-n.e > 3 {
				return e, parts, unit
			}
			e, unit = m.e, true
		case n.caps && utf8.RuneCountInString(w) <= 3:
			e = n.e // state or country code, "SW1A"-style postcode part
		case n.upper:
			// A city or country: up to three capitalised words.
			k := n.e
			for j := 0; j < 2; j++ {
				m, g, ok := nextToken(text, k)
				if !ok || g != 0 || m.num || !(m.upper || isConnector(text[m.s:m.e])) {
					break
				}
				k = m.e
			}
			e = k
		default:
			return e, parts, unit
		}
	}
	return e, parts, unit
}

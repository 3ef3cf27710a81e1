package route

import (
	"math"

	"github.com/tollgate-dev/tollgate/pkg/llm"
)

// Features are the signals the scorer reads from a request.
type Features struct {
	Chars          int  // bytes of user, system and prompt text
	Turns          int  // user and assistant messages
	CodeFences     int  // ``` markers
	CodeWords      int  // code keywords (func, def, class, return, SELECT, ...)
	CodeSymbols    int  // { } ; = < > ( ) [ ] bytes
	MathWords      int  // solve, prove, integral, equation, ...
	MathOps        int  // + - * / ^ = directly between digits or spaces and digits
	ReasoningWords int  // step, explain, compare, analyze, design, trade-off, ...
	Tools          bool // tools or functions offered
}

// Weights of each normalised feature in the score; they need not sum to 1
// (the score is capped at 1).
type Weights struct {
	Length, Code, Math, Reasoning, Depth, Tools float64
}

// DefaultWeights are used when Config.Weights is zero.
var defaultWeights = Weights{Length: 0.35, Code: 0.30, Math: 0.15, Reasoning: 0.25, Depth: 0.10, Tools: 0.15}

// DefaultWeights returns the built-in weights.
func DefaultWeights() Weights { return defaultWeights }

type wordClass uint8

const (
	wordNone wordClass = iota
	wordCode
	wordMath
	wordReason
)

// keywords are matched as whole lower-cased words.
var keywords = map[string]wordClass{
	// code
	"func": wordCode, "def": wordCode, "class": wordCode, "return": wordCode, "import": wordCode,
	"struct": wordCode, "const": wordCode, "var": wordCode, "let": wordCode, "async": wordCode,
	"await": wordCode, "select": wordCode, "lambda": wordCode, "printf": wordCode, "println": wordCode,
	"include": wordCode, "public": wordCode, "static": wordCode, "void": wordCode, "int": wordCode,
	"null": wordCode, "nil": wordCode, "goroutine": wordCode, "mutex": wordCode, "regex": wordCode,
	"compile": wordCode, "refactor": wordCode, "debug": wordCode, "stacktrace": wordCode, "traceback": wordCode,
	"exception": wordCode, "function": wordCode, "python": wordCode, "golang": wordCode, "javascript": wordCode,
	"typescript": wordCode, "rust": wordCode, "sql": wordCode, "kubernetes": wordCode, "api": wordCode,
	// math
	"solve": wordMath, "prove": wordMath, "proof": wordMath, "theorem": wordMath, "integral": wordMath,
	"derivative": wordMath, "equation": wordMath, "equations": wordMath, "matrix": wordMath, "probability": wordMath,
	"lemma": wordMath, "polynomial": wordMath, "eigenvalue": wordMath, "optimize": wordMath, "frac": wordMath,
	"sqrt": wordMath, "sum": wordMath, "limit": wordMath, "inequality": wordMath, "induction": wordMath,
	// multi-step reasoning
	"step": wordReason, "steps": wordReason, "explain": wordReason, "why": wordReason, "compare": wordReason,
	"analyze": wordReason, "analyse": wordReason, "evaluate": wordReason, "design": wordReason, "plan": wordReason,
	"tradeoff": wordReason, "tradeoffs": wordReason, "trade": wordReason, "justify": wordReason, "reason": wordReason,
	"reasoning": wordReason, "architecture": wordReason, "strategy": wordReason, "pros": wordReason, "cons": wordReason,
	"critique": wordReason, "review": wordReason, "implement": wordReason, "derive": wordReason, "first": wordReason,
	"finally": wordReason, "then": wordReason, "detailed": wordReason, "thorough": wordReason, "comprehensive": wordReason,
}

const maxKeywordLen = 16

// kwTable is an open-addressing hash table of the keywords, keyed by the
// same rolling hash the scanner computes while it reads a word, so a lookup
// is one index and one short comparison.
type kwTable struct {
	keys  [kwSlots]string
	class [kwSlots]wordClass
}

const kwSlots = 512 // power of two, > 4x the keywords

func kwHash(h uint32, c byte) uint32 { return h*31 + uint32(c) }

func kwSlot(h uint32) uint32 { return (h ^ h>>9) & (kwSlots - 1) }

func buildTable() *kwTable {
	t := &kwTable{}
	for k, c := range keywords {
		var h uint32
		for i := 0; i < len(k); i++ {
			h = kwHash(h, k[i])
		}
		i := kwSlot(h)
		for t.keys[i] != "" {
			i = (i + 1) & (kwSlots - 1)
		}
		t.keys[i], t.class[i] = k, c
	}
	return t
}

func (t *kwTable) lookup(word []byte, h uint32) wordClass {
	for i := kwSlot(h); t.keys[i] != ""; i = (i + 1) & (kwSlots - 1) {
		if t.keys[i] == string(word) {
			return t.class[i]
		}
	}
	return wordNone
}

// Extract reads the scorer's features from a parsed request. Assistant text
// counts for depth only (it is the model's own output).
func (s *scorer) Extract(req *llm.Request) Features {
	f := Features{Tools: req.ToolsJSON != "" && req.ToolsJSON != "null" && req.ToolsJSON != "[]"}
	for _, t := range req.Texts {
		switch t.Role {
		case "assistant":
			f.Turns++
			continue
		case "user":
			f.Turns++
		case "tool", "function":
			continue
		}
		s.scan(t.Text, &f)
	}
	return f
}

// scan adds the features of one text to f in one pass.
func (s *scorer) scan(text string, f *Features) {
	f.Chars += len(text)
	var word [maxKeywordLen]byte
	var h uint32
	n := 0 // letters in the current word; > maxKeywordLen means too long
	prevDigit := false
	backticks := 0
	flush := func() {
		if n >= 2 && n <= maxKeywordLen {
			switch s.table.lookup(word[:n], h) {
			case wordCode:
				f.CodeWords++
			case wordMath:
				f.MathWords++
			case wordReason:
				f.ReasoningWords++
			}
		}
		n, h = 0, 0
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 'a' && c <= 'z':
			if n < maxKeywordLen {
				word[n] = c
			}
			h = kwHash(h, c)
			n++
			backticks = 0
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
			if n < maxKeywordLen {
				word[n] = c
			}
			h = kwHash(h, c)
			n++
			backticks = 0
			continue
		}
		if n > 0 {
			flush()
		}
		switch c {
		case '`':
			backticks++
			if backticks == 3 {
				f.CodeFences++
				backticks = 0
			}
		case '{', '}', ';', '<', '>', '(', ')', '[', ']':
			f.CodeSymbols++
			backticks = 0
		case '+', '-', '*', '/', '^', '=':
			if prevDigit || (i+1 < len(text) && isDigit(text[i+1])) || (i+2 < len(text) && text[i+1] == ' ' && isDigit(text[i+2])) {
				f.MathOps++
			}
			if c == '=' {
				f.CodeSymbols++
			}
			backticks = 0
		default:
			backticks = 0
		}
		prevDigit = isDigit(c) || (c == ' ' && prevDigit)
	}
	if n > 0 {
		flush()
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Score maps features to [0,1] with weights w.
func Score(f Features, w Weights) float64 {
	// Length: 0 up to 256 bytes, 1 at 16 KiB, logarithmic in between.
	length := 0.0
	if f.Chars > 256 {
		length = math.Min(1, (math.Log2(float64(f.Chars))-8)/6)
	}
	density := 0.0
	if f.Chars > 0 {
		density = float64(f.CodeSymbols) / float64(f.Chars)
	}
	code := math.Min(1, float64(f.CodeFences)/2+float64(f.CodeWords)/8+density*8)
	mathF := math.Min(1, float64(f.MathWords)/3+float64(f.MathOps)/12)
	reason := math.Min(1, float64(f.ReasoningWords)/6)
	depth := 0.0
	if f.Turns > 2 {
		depth = math.Min(1, float64(f.Turns-2)/10)
	}
	tools := 0.0
	if f.Tools {
		tools = 1
	}
	s := w.Length*length + w.Code*code + w.Math*mathF + w.Reasoning*reason + w.Depth*depth + w.Tools*tools
	return math.Min(1, s)
}

type scorer struct {
	table *kwTable
}

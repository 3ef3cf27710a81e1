package compress

import (
	"bytes"
	"encoding/json"
	"strings"
)

// block is one unit of message text: a prose paragraph (consecutive
// non-blank lines outside a code fence) or a fenced code block including its
// fence lines.
type block struct {
	text  string
	fence bool
	// start and end locate the block in the text it was split from.
	start, end int
	// blankBefore: the original had at least one blank line between this
	// block and the previous one (a paragraph break), else a single newline.
	blankBefore bool
}

// splitBlocks cuts text into paragraphs and fenced code blocks. Fences follow
// CommonMark: a line of at least three backticks or tildes, indented by at
// most three spaces, opens a block that the next fence line of the same
// character and at least the same length closes; an unclosed fence runs to
// the end of the text.
func splitBlocks(text string) []block {
	var (
		out        []block
		blank      bool // a blank line was seen since the last block
		paraStart  = -1 // offset of the open paragraph
		paraEnd    int
		fenceCh    byte
		fenceN     int // > 0 inside a fence
		fenceStart int
	)
	add := func(start, end int, fence bool) {
		out = append(out, block{text: text[start:end], fence: fence, start: start, end: end, blankBefore: blank && len(out) > 0})
		blank = false
	}
	flush := func() {
		if paraStart >= 0 {
			add(paraStart, paraEnd, false)
			paraStart = -1
		}
	}
	for off := 0; ; {
		i := strings.IndexByte(text[off:], '\n')
		end := len(text)
		if i >= 0 {
			end = off + i
		}
		line := text[off:end]
		switch c, n, info := fenceLine(line); {
		case fenceN > 0:
			if c == fenceCh && n >= fenceN && strings.TrimSpace(info) == "" {
				add(fenceStart, end, true)
				fenceN = 0
			}
		case n > 0:
			flush()
			fenceCh, fenceN, fenceStart = c, n, off
		case strings.TrimSpace(line) == "":
			flush()
			blank = true
		default:
			if paraStart < 0 {
				paraStart = off
			}
			paraEnd = end
		}
		if i < 0 {
			break
		}
		off = end + 1
	}
	if fenceN > 0 { // unclosed: the rest of the text is code
		add(fenceStart, len(text), true)
	}
	flush()
	return out
}

// fenceLine reports whether line opens or closes a code fence: the fence
// character, its run length (0 if not a fence) and the info string after it.
func fenceLine(line string) (byte, int, string) {
	indent := 0
	for indent < len(line) && line[indent] == ' ' {
		indent++
	}
	if indent > 3 || indent >= len(line) {
		return 0, 0, ""
	}
	c := line[indent]
	if c != '`' && c != '~' {
		return 0, 0, ""
	}
	n := 0
	for indent+n < len(line) && line[indent+n] == c {
		n++
	}
	if n < 3 {
		return 0, 0, ""
	}
	info := line[indent+n:]
	if c == '`' && strings.IndexByte(info, '`') >= 0 {
		return 0, 0, "" // an inline code span, not a fence
	}
	return c, n, info
}

// foldProse folds whitespace in one paragraph: inside each line a run of
// spaces and tabs becomes one space and trailing whitespace goes; a line's
// leading indentation is kept (lists, quotes), and a line indented by four
// spaces or a tab (a Markdown indented code line) is kept byte for byte, as
// is the inside of an inline code span (`...`).
func foldProse(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i, line := range strings.Split(p, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t") {
			b.WriteString(line)
			continue
		}
		foldLine(&b, line)
	}
	return b.String()
}

func foldLine(b *strings.Builder, line string) {
	line = strings.TrimRight(line, " \t\r\f\v")
	var spans [][2]int
	if strings.IndexByte(line, '`') >= 0 {
		spans = codeSpans(line)
	}
	j := 0
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	b.WriteString(line[:j]) // indentation as written
	space := false
	for ; j < len(line); j++ {
		c := line[j]
		if c == ' ' || c == '\t' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		for len(spans) > 0 && spans[0][0] < j {
			spans = spans[1:]
		}
		if len(spans) > 0 && spans[0][0] == j {
			b.WriteString(line[j:spans[0][1]]) // inline code verbatim
			j = spans[0][1] - 1
			spans = spans[1:]
			continue
		}
		b.WriteByte(c)
	}
}

// codeSpans finds the inline code spans of a line, as [start, end) byte
// ranges: a run of n backticks up to the next run of exactly n; a run with
// no such closer is literal text. Linear in the line, whatever its runs.
func codeSpans(line string) [][2]int {
	type run struct{ pos, n int }
	var runs []run
	for i := 0; i < len(line); {
		if line[i] != '`' {
			i++
			continue
		}
		k := 1
		for i+k < len(line) && line[i+k] == '`' {
			k++
		}
		runs = append(runs, run{i, k})
		i += k
	}
	next := make([]int, len(runs)) // the next run of the same length, or -1
	last := map[int]int{}
	for r := len(runs) - 1; r >= 0; r-- {
		next[r] = -1
		if x, ok := last[runs[r].n]; ok {
			next[r] = x
		}
		last[runs[r].n] = r
	}
	var spans [][2]int
	for r := 0; r < len(runs); r++ {
		if c := next[r]; c >= 0 {
			spans = append(spans, [2]int{runs[r].pos, runs[c].pos + runs[c].n})
			r = c
		}
	}
	return spans
}

// minifyFence compacts a fenced block whose info string is json and whose
// body is valid JSON; anything else is returned unchanged.
func minifyFence(fence string) string {
	i := strings.IndexByte(fence, '\n')
	if i < 0 {
		return fence
	}
	first := fence[:i]
	_, _, info := fenceLine(first)
	if f := strings.Fields(info); len(f) == 0 || !strings.EqualFold(f[0], "json") {
		return fence
	}
	last := strings.LastIndexByte(fence, '\n')
	if last <= len(first) {
		return fence
	}
	c, n, rest := fenceLine(fence[last+1:])
	if n == 0 || strings.TrimSpace(rest) != "" || c != first[strings.IndexAny(first, "`~")] {
		return fence // unclosed fence: leave it alone
	}
	body := fence[len(first)+1 : last]
	if m, ok := minifyJSON(body); ok {
		return first + "\n" + m + "\n" + fence[last+1:]
	}
	return fence
}

// minifyJSON compacts s when, trimmed, it is one JSON object or array.
// Strings, numbers and key order are kept exactly.
func minifyJSON(s string) (string, bool) {
	t := strings.TrimSpace(s)
	if len(t) < 2 || (t[0] != '{' && t[0] != '[') {
		return s, false
	}
	var buf bytes.Buffer
	buf.Grow(len(t))
	if err := json.Compact(&buf, []byte(t)); err != nil {
		return s, false
	}
	return buf.String(), true
}

// joinBlocks renders blocks back to text: a paragraph break is one blank
// line however many the original had.
func joinBlocks(blocks []block) string {
	n := 0
	for _, bl := range blocks {
		n += len(bl.text) + 2
	}
	var b strings.Builder
	b.Grow(n)
	for i, bl := range blocks {
		if i > 0 {
			if bl.blankBefore {
				b.WriteString("\n\n")
			} else {
				b.WriteByte('\n')
			}
		}
		b.WriteString(bl.text)
	}
	return b.String()
}

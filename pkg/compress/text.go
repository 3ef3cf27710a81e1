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
		out     []block
		cur     []string // lines of the open paragraph
		blank   bool     // a blank line was seen since the last block
		fenceCh byte
		fenceN  int
		fenced  []string
	)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, block{text: strings.Join(cur, "\n"), blankBefore: blank && len(out) > 0})
			cur, blank = cur[:0], false
		}
	}
	for rest := text; ; {
		line := rest
		i := strings.IndexByte(rest, '\n')
		if i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		}
		switch {
		case fenceN > 0:
			fenced = append(fenced, line)
			if c, n, info := fenceLine(line); c == fenceCh && n >= fenceN && strings.TrimSpace(info) == "" {
				out = append(out, block{text: strings.Join(fenced, "\n"), fence: true, blankBefore: blank && len(out) > 0})
				fenced, fenceN, blank = nil, 0, false
			}
		default:
			if c, n, _ := fenceLine(line); n > 0 {
				flush()
				fenceCh, fenceN = c, n
				fenced = append(fenced[:0], line)
			} else if strings.TrimSpace(line) == "" {
				flush()
				blank = true
			} else {
				cur = append(cur, line)
			}
		}
		if i < 0 {
			break
		}
	}
	if fenceN > 0 { // unclosed: the rest of the text is code
		out = append(out, block{text: strings.Join(fenced, "\n"), fence: true, blankBefore: blank && len(out) > 0})
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
		if c == '`' {
			// Copy an inline code span verbatim: a run of n backticks up to
			// the next run of exactly n on this line.
			n := 1
			for j+n < len(line) && line[j+n] == '`' {
				n++
			}
			if end := closingTicks(line[j+n:], n); end >= 0 {
				b.WriteString(line[j : j+n+end+n])
				j += n + end + n - 1
				continue
			}
			b.WriteString(line[j : j+n])
			j += n - 1
			continue
		}
		b.WriteByte(c)
	}
}

// closingTicks finds a run of exactly n backticks in s; -1 if none.
func closingTicks(s string, n int) int {
	for i := 0; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		k := 0
		for i+k < len(s) && s[i+k] == '`' {
			k++
		}
		if k == n {
			return i
		}
		i += k
	}
	return -1
}

// minifyFence compacts a fenced block whose info string is json and whose
// body is valid JSON; anything else is returned unchanged.
func minifyFence(fence string) string {
	first := fence
	if i := strings.IndexByte(fence, '\n'); i >= 0 {
		first = fence[:i]
	} else {
		return fence
	}
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

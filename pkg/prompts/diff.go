package prompts

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Diff renders a readable, unified-style diff between two prompt versions:
// changed fields as -/+ pairs, then the system prompt and few-shot messages
// line by line (" " kept, "-" removed, "+" added). Identical prompts give
// only the header.
func Diff(prev, next *Prompt) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s\n+++ %s\n", prev.Ref(), next.Ref())
	field := func(name, o, n string) {
		if o != n {
			fmt.Fprintf(&b, "-%s: %s\n+%s: %s\n", name, o, name, n)
		}
	}
	field("current", strconv.FormatBool(prev.Current), strconv.FormatBool(next.Current))
	field("model.allowed", "["+strings.Join(prev.Allowed, ", ")+"]", "["+strings.Join(next.Allowed, ", ")+"]")
	field("model.max_tokens", strconv.FormatInt(prev.MaxTokens, 10), strconv.FormatInt(next.MaxTokens, 10))
	field("variables", formatVars(prev.Variables), formatVars(next.Variables))
	field("changelog", prev.Changelog, next.Changelog)
	section(&b, "system", splitLines(prev.System), splitLines(next.System))
	section(&b, "few_shot", fewShotLines(prev.FewShot), fewShotLines(next.FewShot))
	return b.String()
}

func formatVars(vs []Variable) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if v.Required {
			parts[i] = v.Name + " (required)"
		} else {
			parts[i] = v.Name + "=" + strconv.Quote(v.Default)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func fewShotLines(ms []Message) []string {
	var out []string
	for i, m := range ms {
		for j, l := range splitLines(m.Content) {
			if j == 0 {
				out = append(out, fmt.Sprintf("[%d] %s: %s", i, m.Role, l))
			} else {
				out = append(out, "    "+l)
			}
		}
		if m.Content == "" {
			out = append(out, fmt.Sprintf("[%d] %s:", i, m.Role))
		}
	}
	return out
}

// section writes "@@ name @@" and a line diff when a and b differ.
func section(b *strings.Builder, name string, a, c []string) {
	if equalLines(a, c) {
		return
	}
	fmt.Fprintf(b, "@@ %s @@\n", name)
	for _, op := range lineDiff(a, c) {
		b.WriteByte(op.kind)
		b.WriteString(op.text)
		b.WriteByte('\n')
	}
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	text string
}

// lineDiff is a longest-common-subsequence line diff; prompts are short, so
// the O(len(a)*len(b)) table is fine.
func lineDiff(a, b []string) []diffOp {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, diffOp{'-', a[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, diffOp{'-', a[i]})
	}
	for ; j < m; j++ {
		ops = append(ops, diffOp{'+', b[j]})
	}
	return ops
}

// ErrUsage is returned by RunDiff for wrong arguments.
var ErrUsage = errors.New("usage: tollgate prompts diff NAME@V1 NAME@V2")

// RunDiff implements `tollgate prompts diff NAME@V1 NAME@V2`: it loads dir,
// resolves both references and writes their Diff to stdout. args are the
// arguments after "diff" (a leading "diff" is accepted and skipped).
func RunDiff(dir string, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "diff" {
		args = args[1:]
	}
	if len(args) != 2 {
		return ErrUsage
	}
	reg, err := LoadDir(dir)
	if err != nil {
		return err
	}
	old, err := reg.Resolve(args[0])
	if err != nil {
		return err
	}
	cur, err := reg.Resolve(args[1])
	if err != nil {
		return err
	}
	if _, err := io.WriteString(stdout, Diff(old, cur)); err != nil {
		return fmt.Errorf("write diff: %w", err)
	}
	return nil
}

package guard

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func streamGuard(t testing.TB, rules map[string]Action, window int) *Guard {
	t.Helper()
	g, err := New(Config{Rules: rules, StreamWindow: window})
	require.NoError(t, err)
	return g
}

// runStream feeds text in chunks of size n and returns the released text
// and the block, if any.
func runStream(st *Stream, text string, n int) (string, *Finding) {
	var out strings.Builder
	for i := 0; i < len(text); i += n {
		rel, blk := st.Write(text[i:min(i+n, len(text))])
		out.WriteString(rel)
		if blk != nil {
			return out.String(), blk
		}
	}
	rel, blk := st.Close()
	out.WriteString(rel)
	return out.String(), blk
}

func TestStreamRedactsAcrossDeltas(t *testing.T) {
	g := streamGuard(t, map[string]Action{DetectorPII: ActionRedact, DetectorSecrets: ActionRedact}, 0)
	text := "Sure! Contact jane.doe@example.com or call (415) 555-2671. Your card 4111 1111 1111 1111 is on file, " +
		"and the key AKIAIOSFODNN7EXAMPLE was rotated. Anything else?"
	want := g.NewSession().Check(text).Text
	require.NotEqual(t, text, want)
	for _, n := range []int{1, 2, 3, 5, 7, 16, 64, len(text)} {
		got, blk := runStream(g.NewSession().NewStream(), text, n)
		assert.Nil(t, blk)
		assert.Equal(t, want, got, "chunk size %d", n)
	}
}

func TestStreamSharesSessionPlaceholders(t *testing.T) {
	g := streamGuard(t, map[string]Action{TypeEmail: ActionRedact}, 0)
	s := g.NewSession()
	assert.Equal(t, "ask [EMAIL_1]", s.Check("ask bob@example.org").Text)
	got, _ := runStream(s.NewStream(), "I wrote to bob@example.org and amy@example.org.", 4)
	assert.Equal(t, "I wrote to [EMAIL_1] and [EMAIL_2].", got)
}

func TestStreamBlocks(t *testing.T) {
	g := streamGuard(t, map[string]Action{DetectorSecrets: ActionBlock}, 0)
	text := "Here is the config you asked for: token ghp_0123456789abcdefghijABCDEFGHIJ012345 and more text after it."
	for _, n := range []int{1, 3, 10, 40} {
		st := g.NewSession().NewStream()
		got, blk := runStream(st, text, n)
		require.NotNil(t, blk, "chunk size %d", n)
		assert.Equal(t, "GITHUB_TOKEN", blk.Type)
		assert.Equal(t, strings.Index(text, "ghp_"), blk.Start, "offset is relative to the stream")
		assert.NotContains(t, got, "ghp_", "no part of the secret is released")
		assert.True(t, strings.HasPrefix(text, got))
		rel, again := st.Write("more")
		assert.Empty(t, rel)
		assert.Equal(t, blk, again, "a blocked stream stays blocked")
	}
}

func TestStreamHoldsBackWindow(t *testing.T) {
	g := streamGuard(t, map[string]Action{DetectorPII: ActionRedact}, 32)
	st := g.NewSession().NewStream()
	rel, _ := st.Write("short ")
	assert.Empty(t, rel, "less than a window is held")
	text := strings.Repeat("plain words here ", 10)
	rel, _ = st.Write(text)
	assert.NotEmpty(t, rel)
	assert.LessOrEqual(t, len(rel), len("short ")+len(text)-32)
	rest, _ := st.Close()
	assert.Equal(t, "short "+text, rel+rest)
}

func TestStreamPrivateKeyHeldUntilComplete(t *testing.T) {
	g := streamGuard(t, map[string]Action{DetectorSecrets: ActionRedact}, 16)
	body := strings.Repeat("MIIEowIBAAKCAQEAx7\n", 20)
	text := "key:\n-----BEGIN RSA PRIVATE KEY-----\n" + body + "-----END RSA PRIVATE KEY-----\nthanks"
	got, blk := runStream(g.NewSession().NewStream(), text, 8)
	assert.Nil(t, blk)
	assert.Equal(t, "key:\n[PRIVATE_KEY_1]\nthanks", got)
}

func TestStreamPassThroughWhenLogOnly(t *testing.T) {
	g := streamGuard(t, map[string]Action{DetectorPII: ActionLog, DetectorSecrets: ActionLog}, 0)
	text := "naïve café — mail a@b.io, 日本語のテキスト and more"
	for _, n := range []int{1, 2, 5} {
		got, blk := runStream(g.NewSession().NewStream(), text, n)
		assert.Nil(t, blk)
		assert.Equal(t, text, got)
	}
}

func FuzzStream(f *testing.F) {
	f.Add("mail a@b.io card 4111 1111 1111 1111 key AKIAIOSFODNN7EXAMPLE", uint8(3))
	f.Add("日本語 -----BEGIN PRIVATE KEY-----\nabc", uint8(1))
	f.Add("", uint8(0))
	g, err := New(Config{Rules: map[string]Action{DetectorPII: ActionLog, DetectorSecrets: ActionLog}, StreamWindow: 8})
	if err != nil {
		f.Fatal(err)
	}
	r, err := New(Config{Rules: map[string]Action{DetectorPII: ActionRedact, DetectorSecrets: ActionBlock}, StreamWindow: 8})
	if err != nil {
		f.Fatal(err)
	}
	rd, err := New(Config{Rules: map[string]Action{DetectorPII: ActionRedact, DetectorSecrets: ActionRedact}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string, chunk uint8) {
		n := int(chunk)%32 + 1
		got, blk := runStream(g.NewSession().NewStream(), text, n)
		if blk != nil || got != text {
			t.Fatalf("log-only stream changed the text: %q -> %q", text, got)
		}
		// Redacting: the stream releases exactly what a whole-text check
		// returns, however the text is split.
		s := rd.NewSession()
		want := s.Check(text).Text
		got, blk = runStream(rd.NewSession().NewStream(), text, n)
		if blk != nil || got != want {
			t.Fatalf("chunks of %d: stream released %q, whole-text check gives %q", n, got, want)
		}
		// With redaction and blocking: no panic, block offsets in range.
		_, blk = runStream(r.NewSession().NewStream(), text, n)
		if blk != nil && (blk.Start < 0 || blk.End > len(text) || blk.Start >= blk.End) {
			t.Fatalf("block %v out of range for %d bytes", blk, len(text))
		}
	})
}

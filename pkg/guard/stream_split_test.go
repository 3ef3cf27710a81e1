package guard

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// cardNumbers are valid (Luhn, issuer prefix) numbers in the layouts people
// write: grouped with spaces or dashes, and unbroken.
var cardNumbers = []string{
	"4111 1111 1111 1111",
	"4111-1111-1111-1111",
	"4111111111111111",
	"5555 5555 5555 4444",
	"3782 822463 10005",
	"378282246310005",
	"6011000990139424",
	"4111 1111 1111 1111 110",
	"4111-1111-1111-1111-110",
	"4111111111111111110",
}

// minSafeWindow is the smallest hold-back window that keeps card whole: the
// stream may cut at a space or dash inside a number that is not complete
// yet (a prefix of a grouped number is not a card number), so everything
// after the first separator must fit in the window.
func minSafeWindow(card string) int {
	if i := strings.IndexAny(card, " -"); i >= 0 {
		return len(card) - i - 1
	}
	return 1
}

// TestStreamNeverReleasesCardUnredacted splits a reply that carries a card
// number at every byte offset, for several hold-back windows, and checks
// that no released text contains the number (or its digits, with the
// separators removed) and that the stream redacts exactly as a whole-text
// check. A stream that holds back one byte less than its window releases
// the first group of a grouped number before the number is complete, and
// the rest then goes out in the clear because it no longer validates.
//
// Windows smaller than minSafeWindow leak grouped numbers by design (the
// default window is 64); those combinations are skipped.
func TestStreamNeverReleasesCardUnredacted(t *testing.T) {
	for _, window := range []int{1, 4, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20, 24, 32, 64} {
		g := streamGuard(t, map[string]Action{TypeCreditCard: ActionRedact}, window)
		for _, card := range cardNumbers {
			if window < minSafeWindow(card) {
				continue
			}
			digits := strings.NewReplacer(" ", "", "-", "").Replace(card)
			for _, text := range []string{
				"Your card " + card + " is on file.",
				card + " is on file.",
				"Your card is " + card,
				"card: " + card + "\nnext line",
			} {
				want := g.NewSession().Check(text).Text
				if strings.Contains(want, card) {
					t.Fatalf("a whole-text check does not redact %q in %q", card, text)
				}
				for split := 0; split <= len(text); split++ {
					st := g.NewSession().NewStream()
					var out strings.Builder
					for _, part := range []string{text[:split], text[split:]} {
						rel, blk := st.Write(part)
						if blk != nil {
							t.Fatalf("window %d: unexpected block %+v", window, blk)
						}
						out.WriteString(rel)
					}
					rel, _ := st.Close()
					out.WriteString(rel)
					got := out.String()
					flat := strings.NewReplacer(" ", "", "-", "").Replace(got)
					if strings.Contains(got, card) || strings.Contains(flat, digits) {
						t.Errorf("window %d, split at %d: card number released unredacted: %q", window, split, got)
						continue
					}
					if got != want {
						t.Errorf("window %d, split at %d: stream released %q, whole-text check gives %q", window, split, got, want)
					}
				}
				// Byte by byte and in small chunks.
				for _, n := range []int{1, 2, 3, 5, 7} {
					got, _ := runStream(g.NewSession().NewStream(), text, n)
					if got != want {
						t.Errorf("window %d, chunks of %d: stream released %q, whole-text check gives %q", window, n, got, want)
					}
				}
			}
		}
	}
}

// TestStreamKeepsKeyNameAsContext streams an assignment whose key name
// (the word that makes the value a secret) is far from the value, split at
// every offset: the name may be released before the value arrives, and the
// stream must keep enough released text as left context to still recognise
// and redact the value.
func TestStreamKeepsKeyNameAsContext(t *testing.T) {
	text := "Set it in your shell:\nexport PASSWORD_FOR_PRIMARY_CLUSTER = 'Zq8kLm2pW9xR4t' and restart the service."
	for _, window := range []int{40, 64, 128} {
		g := streamGuard(t, map[string]Action{DetectorSecrets: ActionRedact}, window)
		want := g.NewSession().Check(text).Text
		if strings.Contains(want, "Zq8kLm2pW9xR4t") {
			t.Fatalf("a whole-text check does not redact the password: %q", want)
		}
		for split := 0; split <= len(text); split++ {
			st := g.NewSession().NewStream()
			a, _ := st.Write(text[:split])
			b, _ := st.Write(text[split:])
			c, _ := st.Close()
			if got := a + b + c; got != want {
				t.Errorf("window %d, split at %d: released %q, want %q", window, split, got, want)
			}
		}
	}
}

// TestStreamBlocksKeyWhoseHeaderWasReleased: with a small window the stream
// may release the start of a PEM header ("-----BEGIN ") before the header is
// complete. The key block found later starts in that released text; it must
// still block the stream before any key material goes out.
func TestStreamBlocksKeyWhoseHeaderWasReleased(t *testing.T) {
	g := streamGuard(t, map[string]Action{DetectorSecrets: ActionBlock}, 4)
	body := strings.Repeat("MIIEowIBAAKCAQEAx7\n", 20)
	text := "Here it is:\n-----BEGIN RSA PRIVATE KEY-----\n" + body + "-----END RSA PRIVATE KEY-----\nthanks"
	for _, n := range []int{1, 2, 3, 5, 8, 13} {
		got, blk := runStream(g.NewSession().NewStream(), text, n)
		if blk == nil || blk.Type != "PRIVATE_KEY" {
			t.Fatalf("chunks of %d: block %+v, want PRIVATE_KEY (released %q)", n, blk, got)
		}
		if strings.Contains(got, "MIIE") {
			t.Fatalf("chunks of %d: key material released before the block: %q", n, got)
		}
		if want := strings.Index(text, "-----BEGIN"); blk.Start != want {
			t.Errorf("chunks of %d: block starts at %d, want %d (offsets are relative to the stream)", n, blk.Start, want)
		}
	}
}

// TestStreamBlockOffsetAfterLongPrefix: after the stream has released and
// dropped many bytes, a block still reports offsets from the start of the
// stream.
func TestStreamBlockOffsetAfterLongPrefix(t *testing.T) {
	g := streamGuard(t, map[string]Action{DetectorSecrets: ActionBlock}, 16)
	text := strings.Repeat("some harmless words here ", 40) + "token ghp_0123456789abcdefghijABCDEFGHIJ012345 end"
	for _, n := range []int{1, 7, 64} {
		_, blk := runStream(g.NewSession().NewStream(), text, n)
		if blk == nil {
			t.Fatalf("chunks of %d: not blocked", n)
		}
		if want := strings.Index(text, "ghp_"); blk.Start != want || blk.End-blk.Start != len("ghp_0123456789abcdefghijABCDEFGHIJ012345") {
			t.Errorf("chunks of %d: block at [%d,%d), want [%d,%d)", n, blk.Start, blk.End, want, want+40)
		}
	}
}

// TestStreamReleasesWholeRunes: every released piece is valid UTF-8 (each
// becomes a JSON string on the wire), also when a token without white space
// outgrows the hold limit and is cut inside, and when deltas split runes.
func TestStreamReleasesWholeRunes(t *testing.T) {
	g := streamGuard(t, map[string]Action{DetectorPII: ActionLog}, 8)
	text := strings.Repeat("日本語テキスト", 8000) + " and é ü 😀 " + strings.Repeat("ü", 40000)
	for _, n := range []int{1000, 4097, 65537} {
		st := g.NewSession().NewStream()
		var out strings.Builder
		for i := 0; i < len(text); i += n {
			rel, _ := st.Write(text[i:min(i+n, len(text))])
			if !utf8.ValidString(rel) {
				t.Fatalf("chunks of %d: release after byte %d is not valid UTF-8", n, i)
			}
			out.WriteString(rel)
		}
		rel, _ := st.Close()
		out.WriteString(rel)
		if out.String() != text {
			t.Fatalf("chunks of %d: released text differs from the input", n)
		}
	}
}

// TestStreamBlocksCardStartedInReleasedText: with a block rule, a grouped
// card number whose first groups were already released (the cut may fall
// on a space inside it before it is complete) must still stop the stream
// once it completes, while its start is in the kept context; the whole
// number never goes out.
func TestStreamBlocksCardStartedInReleasedText(t *testing.T) {
	for _, window := range []int{10, 12, 14, 16, 20} {
		g := streamGuard(t, map[string]Action{TypeCreditCard: ActionBlock}, window)
		for _, card := range cardNumbers {
			digits := strings.NewReplacer(" ", "", "-", "").Replace(card)
			text := "Your card " + card + " is on file."
			for split := 0; split <= len(text); split++ {
				st := g.NewSession().NewStream()
				var out strings.Builder
				var blk *Finding
				for _, part := range []string{text[:split], text[split:]} {
					rel, b := st.Write(part)
					out.WriteString(rel)
					blk = b
				}
				if blk == nil {
					rel, b := st.Close()
					out.WriteString(rel)
					blk = b
				}
				if blk == nil {
					t.Errorf("window %d, split at %d: %q not blocked", window, split, card)
				}
				if flat := strings.NewReplacer(" ", "", "-", "").Replace(out.String()); strings.Contains(flat, digits) {
					t.Errorf("window %d, split at %d: card number released: %q", window, split, out.String())
				}
			}
		}
	}
}

package guard

import (
	"strings"
	"testing"
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

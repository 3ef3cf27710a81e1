package guard_test

import (
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/guard/corpus"
)

// corporaFlag names the folder holding the evaluation corpora: -corpora, else
// $TOLLGATE_CORPORA, else ../shared/corpora. A relative path is relative to
// the repository root, as for `make bench-guard`.
var corporaFlag = flag.String("corpora", "", "folder holding the evaluation corpora (default $TOLLGATE_CORPORA, else ../shared/corpora from the repository root)")

// repoRoot is the repository root relative to this package's directory, the
// working directory of its tests.
const repoRoot = "../.."

func corporaDir() string {
	dir := *corporaFlag
	if dir == "" {
		dir = os.Getenv("TOLLGATE_CORPORA")
	}
	if dir == "" {
		dir = "../shared/corpora"
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(repoRoot, dir)
	}
	return dir
}

// TestShippedAccuracy guards the numbers in README.md against regressions.
// Without the corpora it skips, except in CI (CI=true), where it fails: the
// published figures must be checked on every run.
func TestShippedAccuracy(t *testing.T) {
	corporaDir := corporaDir()
	if _, err := os.Stat(corporaDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpora not present at %s (set TOLLGATE_CORPORA or -corpora): %v", corporaDir, err)
		}
		t.Skipf("corpora not present (set TOLLGATE_CORPORA or -corpora): %v", err)
	}
	g, err := guard.New(guard.Config{Rules: map[string]guard.Action{
		guard.DetectorPII: guard.ActionLog, guard.DetectorInjection: guard.ActionLog,
		guard.DetectorEntities: guard.ActionLog, guard.DetectorSecrets: guard.ActionLog,
	}})
	require.NoError(t, err)

	t.Run("injection held-out", func(t *testing.T) {
		dirs, err := corpus.Dirs(corporaDir, "injection-")
		require.NoError(t, err)
		var attacks, detected, benignMix, benignMixFP, benign, benignFP int
		for _, d := range dirs {
			recs, err := corpus.Load(filepath.Join(corporaDir, d))
			require.NoError(t, err)
			for _, r := range recs {
				if corpus.SplitOf(r.Text) != corpus.Test {
					continue
				}
				hit := false
				for _, f := range g.Scan(r.Text) {
					hit = hit || f.Detector == guard.DetectorInjection
				}
				if !r.Attack() {
					benign++
					if hit {
						benignFP++
					}
				}
				switch {
				case r.Attack():
					attacks++
					if hit {
						detected++
					}
				case d == "injection-benign-mix":
					benignMix++
					if hit {
						benignMixFP++
					}
				}
			}
		}
		assert.GreaterOrEqual(t, float64(detected)/float64(attacks), 0.91, "detection on held-out attacks")
		assert.LessOrEqual(t, float64(benignFP)/float64(benign), 0.01, "FPR on all held-out benign texts")
		assert.LessOrEqual(t, float64(benignMixFP)/float64(benignMix), 0.03, "FPR on injection-benign-mix")
	})

	t.Run("pii", func(t *testing.T) {
		want := map[string]string{"EMAIL_ADDRESS": guard.TypeEmail, "CREDIT_CARD": guard.TypeCreditCard,
			"US_SSN": guard.TypeSSN, "IBAN_CODE": guard.TypeIBAN, "IP_ADDRESS": guard.TypeIPAddress,
			"PHONE_NUMBER": guard.TypePhone}
		labelled, found, findings, tp := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
		for _, d := range []string{"pii-presidio-synth", "pii-presidio-generated"} {
			recs, err := corpus.Load(filepath.Join(corporaDir, d))
			require.NoError(t, err)
			for _, r := range recs {
				fs := g.Scan(r.Text)
				for _, e := range r.Entities {
					typ, ok := want[e.Type]
					if !ok {
						continue
					}
					labelled[typ]++
					for _, f := range fs {
						if f.Type == typ && f.Start < e.ByteEnd && e.ByteStart < f.End {
							found[typ]++
							break
						}
					}
				}
				for _, f := range fs {
					findings[f.Type]++
					for _, e := range r.Entities {
						if want[e.Type] == f.Type && f.Start < e.ByteEnd && e.ByteStart < f.End {
							tp[f.Type]++
							break
						}
					}
				}
			}
		}
		for _, typ := range want {
			require.Positive(t, labelled[typ], typ)
			assert.GreaterOrEqual(t, float64(found[typ])/float64(labelled[typ]), 0.97, "%s recall", typ)
			assert.GreaterOrEqual(t, float64(tp[typ])/float64(findings[typ]), 0.95, "%s precision", typ)
		}
	})
}

// TestShippedEntityAndSecretAccuracy guards the entity and secrets numbers
// in README.md (recall with span overlap, both halves of the corpora).
func TestShippedEntityAndSecretAccuracy(t *testing.T) {
	corporaDir := corporaDir()
	if _, err := os.Stat(corporaDir); err != nil {
		t.Skipf("corpora not present: %v", err)
	}
	g, err := guard.New(guard.Config{Rules: map[string]guard.Action{
		guard.DetectorPII: guard.ActionLog, guard.DetectorEntities: guard.ActionLog, guard.DetectorSecrets: guard.ActionLog,
	}})
	require.NoError(t, err)
	recall := func(dir string, match func(e corpus.Entity, f guard.Finding) bool, label func(string) bool) float64 {
		recs, err := corpus.Load(filepath.Join(corporaDir, dir))
		require.NoError(t, err)
		var n, found int
		for _, r := range recs {
			fs := g.Scan(r.Text)
			for _, e := range r.Entities {
				if !label(e.Type) {
					continue
				}
				n++
				for _, f := range fs {
					if f.Start < e.ByteEnd && e.ByteStart < f.End && match(e, f) {
						found++
						break
					}
				}
			}
		}
		require.Positive(t, n, dir)
		return float64(found) / float64(n)
	}
	is := func(types ...string) func(string) bool {
		return func(s string) bool { return slices.Contains(types, s) }
	}
	typed := func(typ string) func(corpus.Entity, guard.Finding) bool {
		return func(_ corpus.Entity, f guard.Finding) bool { return f.Type == typ }
	}
	// A place inside an ADDRESS finding is redacted with it.
	inside := func(e corpus.Entity, f guard.Finding) bool {
		return f.Type == guard.TypeLocation || f.Start <= e.ByteStart && e.ByteEnd <= f.End
	}
	secret := func(_ corpus.Entity, f guard.Finding) bool { return f.Detector == guard.DetectorSecrets }
	for _, c := range []struct {
		dir                     string
		person, address, places float64
	}{{"pii-presidio-synth", 0.62, 0.80, 0.72}, {"pii-presidio-generated", 0.85, 0.72, 0.82}} {
		assert.GreaterOrEqual(t, recall(c.dir, typed(guard.TypePerson), is("PERSON")), c.person, "%s PERSON", c.dir)
		assert.GreaterOrEqual(t, recall(c.dir, typed(guard.TypeAddress), is("STREET_ADDRESS", "ADDRESS")), c.address, "%s ADDRESS", c.dir)
		assert.GreaterOrEqual(t, recall(c.dir, inside, is("GPE", "LOCATION")), c.places, "%s LOCATION (redacted)", c.dir)
	}
	assert.GreaterOrEqual(t, recall("secrets-noseyparker", secret, func(string) bool { return true }), 0.80, "noseyparker")
	assert.GreaterOrEqual(t, recall("secrets-secretlint", secret, func(string) bool { return true }), 0.90, "secretlint")
}

// TestBenignPromptsKeepTheirDecisionUnderIDs appends random identifiers to
// the benign prompts of the train and validation splits: no decision may
// change with the identifier.
func TestBenignPromptsKeepTheirDecisionUnderIDs(t *testing.T) {
	corporaDir := corporaDir()
	if _, err := os.Stat(corporaDir); err != nil {
		t.Skipf("corpora not present: %v", err)
	}
	g, err := guard.New(guard.Config{Rules: map[string]guard.Action{guard.DetectorInjection: guard.ActionLog}})
	require.NoError(t, err)
	thr := g.InjectionThreshold()
	r := rand.New(rand.NewPCG(7, 7))
	const hex, b62 = "0123456789abcdef", "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	draw := func(alpha string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		return string(b)
	}
	ids := func() string {
		switch r.IntN(4) {
		case 0:
			return draw(hex, 8) + "-" + draw(hex, 4) + "-4" + draw(hex, 3) + "-" + draw(hex, 4) + "-" + draw(hex, 12)
		case 1:
			return draw(hex, 32)
		case 2:
			return "rec_" + draw(b62, 16)
		default:
			return draw("0123456789", 9)
		}
	}
	dirs, err := corpus.Dirs(corporaDir, "injection-")
	require.NoError(t, err)
	var n, flips int
	for _, d := range dirs {
		recs, err := corpus.Load(filepath.Join(corporaDir, d))
		require.NoError(t, err)
		for _, rec := range recs {
			if rec.Attack() || corpus.SplitOf(rec.Text) == corpus.Test {
				continue
			}
			n++
			first := g.InjectionScore(rec.Text+" [record "+ids()+"]") >= thr
			for range 3 {
				if (g.InjectionScore(rec.Text+" [record "+ids()+"]") >= thr) != first {
					flips++
					t.Logf("flip: %.100q", rec.Text)
					break
				}
			}
		}
	}
	require.Positive(t, n)
	assert.Zero(t, flips, "benign prompts whose decision depends on the id (of %d)", n)
}

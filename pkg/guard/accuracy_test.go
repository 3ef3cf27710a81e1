package guard_test

import (
	"flag"
	"os"
	"path/filepath"
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
	}})
	require.NoError(t, err)

	t.Run("injection held-out", func(t *testing.T) {
		dirs, err := corpus.Dirs(corporaDir, "injection-")
		require.NoError(t, err)
		var attacks, detected, benignMix, benignMixFP int
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
		assert.GreaterOrEqual(t, float64(detected)/float64(attacks), 0.90, "detection on held-out attacks")
		assert.LessOrEqual(t, float64(benignMixFP)/float64(benignMix), 0.03, "FPR on injection-benign-mix")
	})

	t.Run("pii", func(t *testing.T) {
		want := map[string]string{"EMAIL_ADDRESS": guard.TypeEmail, "CREDIT_CARD": guard.TypeCreditCard,
			"US_SSN": guard.TypeSSN, "IBAN_CODE": guard.TypeIBAN, "IP_ADDRESS": guard.TypeIPAddress}
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

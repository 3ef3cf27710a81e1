package guard_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/guard/corpus"
)

// corporaDir is ../shared/corpora relative to the repository root.
const corporaDir = "../../../shared/corpora"

// TestShippedAccuracy guards the numbers in README.md against regressions:
// it runs only where the evaluation corpora are present.
func TestShippedAccuracy(t *testing.T) {
	if _, err := os.Stat(corporaDir); err != nil {
		t.Skipf("corpora not present: %v", err)
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

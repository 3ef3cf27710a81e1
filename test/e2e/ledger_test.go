package e2e

import (
	"errors"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/fakeprovider"
	"github.com/tollgate-dev/tollgate/test/redistest"
)

// expensive asks for a completion that reserves about 0.01 USD on "large"
// (1000 output tokens at 10 USD/M) and actually costs usage-many tokens.
func expensive(t *testing.T, c openai.Client, usage string) error {
	p := chatParams("large", "budgeted request")
	p.MaxTokens = openai.Int(1000)
	_, err := c.Chat.Completions.New(ctx(t), p, option.WithHeader("x-fake-usage", usage))
	return err
}

// TestLedgerSurvivesRestart: spend recorded before a restart still counts
// against the cap after it (file ledger, flushed on graceful shutdown).
func TestLedgerSurvivesRestart(t *testing.T) {
	t.Parallel()
	ledger := t.TempDir() + "/ledger.jsonl"
	// Cap 0.02: the first request spends 0.012 (prompt 0 + 1200 output
	// tokens); after that, a second reservation of ~0.01 no longer fits.
	opts := Options{DailyCapA: 0.02, LedgerPath: ledger}
	g := StartEmulated(t, opts)
	require.NoError(t, expensive(t, g.Client(KeyA), "prompt=0,completion=1200"))
	g.Stop()

	g2 := StartEmulated(t, Options{DailyCapA: 0.02, LedgerPath: ledger, Provider: g.Provider})
	err := expensive(t, g2.Client(KeyA), "prompt=0,completion=1")
	var e *openai.Error
	require.True(t, errors.As(err, &e), "want 429 after restart, got %v", err)
	assert.Equal(t, 429, e.StatusCode)
	assert.Equal(t, "budget_exceeded", e.Code)
	assert.Equal(t, 1, g.Provider.Calls(), "the rejected request never reached the provider")
}

// TestReplicasShareRedisCap: two ext_proc replicas on one Redis enforce one
// cap between them.
func TestReplicasShareRedisCap(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	p, _ := fakeprovider.StartTest(t, fakeprovider.Options{})

	// Cap 0.05 and each request reserves ~0.01 and spends 0.01 (1000 output
	// tokens): at most 5 requests can be admitted across both replicas.
	opts := Options{DailyCapA: 0.05, RedisAddr: rds.Addr, Provider: p}
	r1, r2 := StartEmulated(t, opts), StartEmulated(t, opts)
	var mu sync.Mutex
	admitted, rejected := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		g := r1
		if i%2 == 1 {
			g = r2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := expensive(t, g.Client(KeyA), "prompt=0,completion=1000")
			mu.Lock()
			defer mu.Unlock()
			var e *openai.Error
			switch {
			case err == nil:
				admitted++
			case errors.As(err, &e) && e.StatusCode == 429:
				rejected++
			default:
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, admitted, 5, "two replicas must not admit more than one shared cap allows")
	assert.Positive(t, admitted)
	assert.Equal(t, 20-admitted, rejected)
	assert.Equal(t, admitted, p.Calls())
	spent := r1.Sum("tollgate_cost_usd_total", map[string]string{"tenant": "a"}) + r2.Sum("tollgate_cost_usd_total", map[string]string{"tenant": "a"})
	assert.LessOrEqual(t, spent, 0.05+1e-12)
}

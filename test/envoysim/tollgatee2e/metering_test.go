package tollgatee2e

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/envoysim"
	"github.com/tollgate-dev/tollgate/test/promtest"
)

// TestTimedOutAttemptIsBilled: the primary stalls past the per-try timeout
// Tollgate's xDS config sets, Envoy cuts the attempt and the backup answers.
// The provider received the first attempt's prompt and bills it, so the
// tenant's spend is the backup's answer plus the primary's prompt, and
// nothing of it is billed twice or to another tenant.
func TestTimedOutAttemptIsBilled(t *testing.T) {
	d := startDeployment(t, "slow-first-byte=2s", func(c *config.Config) {
		for _, name := range []string{"fake", "fake-backup"} {
			p := c.Providers[name]
			p.Timeout = 40 * time.Millisecond // 1 s in the emulator's slowed clock
			c.Providers[name] = p
		}
	})
	sc, err := envoysim.FromTollgate(d.cfg, d.hosts, nil)
	require.NoError(t, err)
	base, _, exchanges := d.start(t, sc)

	resp, body := chat(t, base, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarise the quarterly report in three bullet points, please."}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, "fake-backup", resp.Header.Get("x-tollgate-provider"))
	x := <-exchanges
	require.Len(t, x.Attempts, 2)
	require.ErrorIs(t, x.Attempts[0].Err, envoysim.ErrPerTryTimeout)
	served, err := strconv.ParseFloat(resp.Header.Get("x-tollgate-cost-usd"), 64)
	require.NoError(t, err)

	// The upstream role bills when the cut attempt's stream ends, which
	// the client's answer does not wait for.
	var mfs map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		mfs = promtest.Scrape(t, "http://"+d.adminAddr+"/metrics")
		return promtest.SumScraped(mfs, "tollgate_cost_usd_total", map[string]string{"tenant": "demo", "provider": "fake"}) > 0
	}, 10*time.Second, 20*time.Millisecond, "the timed-out attempt is never billed")
	assert.Equal(t, 1.0, promtest.SumScraped(mfs, "tollgate_upstream_attempts_total", map[string]string{"provider": "fake", "result": "timed_out"}))
	assert.Equal(t, 1.0, promtest.SumScraped(mfs, "tollgate_upstream_attempts_total", map[string]string{"provider": "fake-backup", "result": "answered"}))
	assert.InDelta(t, served, promtest.SumScraped(mfs, "tollgate_cost_usd_total", map[string]string{"tenant": "demo", "provider": "fake-backup"}), 1e-9)
	// gpt-4o-mini input at $0.15/M: the prompt (13 tokens) costs about
	// two micro-dollars, and no output is billed for it.
	timedOut := promtest.SumScraped(mfs, "tollgate_cost_usd_total", map[string]string{"tenant": "demo", "provider": "fake"})
	assert.InDelta(t, 13*0.15e-6, timedOut, 1e-12)
}

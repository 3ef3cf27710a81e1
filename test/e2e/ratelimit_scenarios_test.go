package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/fakeprovider"
	"github.com/tollgate-dev/tollgate/test/redistest"
)

func init() {
	scenarios = append(scenarios,
		scenario{name: "RateLimitRPM429", opts: Options{Extra: "limits:\n  tenants:\n    a: {rpm: 2}\n"}, run: rateLimitRPM},
		scenario{name: "RateLimitTPMCorrected", opts: Options{Extra: "limits:\n  keys:\n    key-a: {tpm: 1000}\n"}, run: rateLimitTPM},
	)
}

// window is the rate limiter's current one-minute window. Limits are
// counted per wall-clock minute, so a test that crosses a minute boundary
// may see up to twice the limit admitted: the assertions are exact only when
// the test ran within one window.
func window() int64 { return time.Now().Unix() / 60 }

const rlBody = `{"model":"small","messages":[{"role":"user","content":"hi"}]}`

// rateLimitRPM: the third request of a minute gets OpenAI's 429 with
// Retry-After and x-ratelimit-* headers, before reaching the provider;
// another tenant is not affected.
func rateLimitRPM(t *testing.T, g *Gateway) {
	w0 := window()
	admitted := 0
	var first, refused rawResponse
	for range 5 {
		r, err := postWithHeaders(g, rlBody, nil)
		require.NoError(t, err)
		if r.status == 429 {
			refused = r
			break
		}
		require.Equal(t, 200, r.status, r.body)
		if admitted == 0 {
			first = r
		}
		admitted++
	}
	same := window() == w0
	require.Equal(t, 429, refused.status, "a 429 within 5 requests at rpm 2")
	if same {
		assert.Equal(t, 2, admitted)
	} else {
		assert.LessOrEqual(t, admitted, 4)
	}
	assert.Equal(t, admitted, g.Provider.Calls(), "the refused request never reached the provider")

	var e struct {
		Error struct{ Message, Type, Code string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(refused.body), &e), refused.body)
	assert.Equal(t, "requests", e.Error.Type)
	assert.Equal(t, "rate_limit_exceeded", e.Error.Code)
	assert.Contains(t, e.Error.Message, "tenant a: Limit 2")
	h := refused.header
	retry, err := strconv.Atoi(h.Get("retry-after"))
	require.NoError(t, err, "Retry-After: %q", h.Get("retry-after"))
	assert.GreaterOrEqual(t, retry, 1)
	assert.LessOrEqual(t, retry, 60)
	assert.Equal(t, "2", h.Get("x-ratelimit-limit-requests"))
	assert.Equal(t, "0", h.Get("x-ratelimit-remaining-requests"))
	assert.Equal(t, fmt.Sprintf("%ds", retry), h.Get("x-ratelimit-reset-requests"))
	assert.Equal(t, "true", h.Get("x-should-retry"))
	assert.Empty(t, h.Get("x-ratelimit-limit-tokens"), "no TPM configured")
	assert.Equal(t, 1.0, g.Sum("tollgate_ratelimit_rejections_total", map[string]string{"tenant": "a", "kind": "rpm"}))

	if same {
		assert.Equal(t, "1", first.header.Get("x-ratelimit-remaining-requests"), "a forwarded response carries the limits too")
	}
	assert.Equal(t, "2", first.header.Get("x-ratelimit-limit-requests"))

	resp, err := g.Post("/v1/chat/completions", KeyB, rlBody)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "tenant b has no limit")
	assert.Empty(t, resp.Header.Get("x-ratelimit-limit-requests"))
}

// rateLimitTPM: each request is admitted on its estimate (prompt +
// max_tokens 400) and charged its actual usage (20 tokens) afterwards, so
// ten of them fit a TPM of 1000 where two estimates would not; a request
// whose estimate alone exceeds the TPM is refused for good.
func rateLimitTPM(t *testing.T, g *Gateway) {
	body := `{"model":"small","max_tokens":400,"messages":[{"role":"user","content":"hi"}]}`
	for i := range 10 {
		r, err := postWithHeaders(g, body, map[string]string{fakeprovider.HeaderUsage: "prompt=10,completion=10"})
		require.NoError(t, err)
		require.Equal(t, 200, r.status, "request %d: %s", i+1, r.body)
	}
	r, err := postWithHeaders(g, `{"model":"small","max_tokens":2000,"messages":[{"role":"user","content":"hi"}]}`, nil)
	require.NoError(t, err)
	require.Equal(t, 429, r.status, r.body)
	assert.Contains(t, r.body, `"type":"tokens"`)
	assert.Contains(t, r.body, "Request too large")
	assert.Equal(t, "false", r.header.Get("x-should-retry"))
	assert.Empty(t, r.header.Get("retry-after"))
	assert.Equal(t, "1000", r.header.Get("x-ratelimit-limit-tokens"))
	assert.Equal(t, 1.0, g.Sum("tollgate_ratelimit_rejections_total", map[string]string{"tenant": "a", "kind": "tpm"}))
}

// TestReplicasShareRateLimit: two ext_proc replicas on one Redis enforce one
// RPM between them.
func TestReplicasShareRateLimit(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	p, _ := fakeprovider.StartTest(t, fakeprovider.Options{})
	opts := Options{Provider: p, Extra: fmt.Sprintf("limits:\n  backend: redis\n  redis: {addr: %q}\n  tenants:\n    a: {rpm: 4}\n", rds.Addr)}
	r1, r2 := StartEmulated(t, opts), StartEmulated(t, opts)

	w0 := window()
	var mu sync.Mutex
	admitted, refused := 0, 0
	var wg sync.WaitGroup
	for i := range 12 {
		g := r1
		if i%2 == 1 {
			g = r2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := postWithHeaders(g, rlBody, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("request: %v", err)
			case r.status == 200:
				admitted++
			case r.status == 429:
				refused++
			default:
				t.Errorf("unexpected %d: %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	if window() == w0 {
		assert.Equal(t, 4, admitted, "two replicas admit one shared RPM")
	} else {
		assert.LessOrEqual(t, admitted, 8)
	}
	assert.Equal(t, 12-admitted, refused)
	assert.Equal(t, admitted, p.Calls())
	rejections := r1.Sum("tollgate_ratelimit_rejections_total", map[string]string{"tenant": "a", "kind": "rpm"}) +
		r2.Sum("tollgate_ratelimit_rejections_total", map[string]string{"tenant": "a", "kind": "rpm"})
	assert.Equal(t, float64(refused), rejections)
}

package llm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseUsageErrorBody: an upstream error is never metered as a
// completion, whatever else the body carries.
func TestParseUsageErrorBody(t *testing.T) {
	for _, body := range []string{
		`{"error":{"message":"rate limited","type":"requests","code":"rate_limit_exceeded"}}`,
		`{"model":"m","usage":{"prompt_tokens":10,"completion_tokens":5},"error":{"message":"x"}}`,
		`{"error":"overloaded"}`,
	} {
		u, err := ParseUsage([]byte(body))
		require.NoError(t, err, body)
		assert.True(t, u.IsError, body)
		assert.False(t, u.HasUsage, body)
		assert.Equal(t, Usage{}, u.Usage, body)
	}
}

// FuzzParseUsage: the top-level-only reader metering uses agrees with the
// full response parser on everything metering reads.
func FuzzParseUsage(f *testing.F) {
	f.Add([]byte(`{"id":"x","model":"m","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":10,"completion_tokens":20,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":7}},"system_fingerprint":"fp"}`))
	f.Add([]byte(`{"error":{"message":"x"},"usage":{"prompt_tokens":1}}`))
	f.Add([]byte(`{"usage":null,"model":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		u, uerr := ParseUsage(body)
		r, rerr := ParseResponse(body)
		if (uerr == nil) != (rerr == nil) {
			t.Fatalf("ParseUsage error %v, ParseResponse error %v", uerr, rerr)
		}
		if uerr != nil || hasDuplicateKeys(body) {
			return
		}
		if u.IsError != r.IsError || u.HasUsage != r.HasUsage || u.Usage != r.Usage ||
			u.Model != r.Model || u.SystemFingerprint != r.SystemFingerprint {
			t.Fatalf("ParseUsage %+v, ParseResponse %+v", u, r)
		}
	})
}

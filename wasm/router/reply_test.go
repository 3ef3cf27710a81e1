package router_test

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/wasm/router"
)

// TestReplyMessagesReuseDecision: replies that echo client input carry the
// expected message (truncated at 128 bytes), a reused Decision builds them
// without allocating, and each decision's message is its own.
func TestReplyMessagesReuseDecision(t *testing.T) {
	r, err := router.ParseConfig([]byte(`{"anonymous":{"tenant":"p","tier":"t"},"deny":{"methods":["DELETE"],"paths":["/v1/embeddings"]},
		"tiers":{"t":{"default_model":"m","allowed_models":["m"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	long := "/" + strings.Repeat("p", 200)
	tests := []struct {
		name    string
		headers [][2]string
		outcome router.Outcome
		message string
	}{
		{"method", [][2]string{{":method", "DELETE"}, {":path", "/v1/chat/completions"}}, router.OutcomeDeniedMethod, "Method DELETE is not allowed."},
		{"path", [][2]string{{":method", "POST"}, {":path", "/v1/embeddings?x=1"}}, router.OutcomeDeniedPath, "Access to /v1/embeddings is not allowed."},
		{"unknown", [][2]string{{":method", "GET"}, {":path", "/x"}}, router.OutcomeUnknownPath, "Unknown request URL: GET /x."},
		{"unknown long", [][2]string{{":method", "GET"}, {":path", long}}, router.OutcomeUnknownPath, "Unknown request URL: GET " + long[:128] + "...."},
		{"model", [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"x-tollgate-model", "other"}}, router.OutcomeModelNotAllowed,
			"The model 'other' is not allowed for this API key's tier."},
		{"constant message after echoed ones", [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"x-api-key", "nope"}},
			router.OutcomeInvalidKey, "Incorrect API key provided."},
	}
	var d router.Decision // reused, as the filter does
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := router.Request{Headers: tt.headers}
			r.DecideInto(req, &d)
			if d.Outcome != tt.outcome || d.Reply == nil || d.Reply.Message != tt.message {
				t.Fatalf("DecideInto = %s %+v, want %s %q", d.Outcome, d.Reply, tt.outcome, tt.message)
			}
			if fresh := r.Decide(req); fresh.Reply == nil || fresh.Reply.Message != tt.message {
				t.Fatalf("Decide = %+v, want %q", fresh.Reply, tt.message)
			}
			if n := testing.AllocsPerRun(20, func() { r.DecideInto(req, &d) }); n != 0 {
				t.Fatalf("DecideInto allocates %.0f times per reply", n)
			}
		})
	}
}

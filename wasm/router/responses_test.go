package router_test

import (
	"testing"

	"github.com/tollgate-dev/tollgate/wasm/router"
)

// TestResponsesPathServedByDefault: POST /v1/responses (the Responses API)
// is one of the default paths, so the router lets it on to ext_proc.
func TestResponsesPathServedByDefault(t *testing.T) {
	r, err := router.ParseConfig([]byte(`{"anonymous":{"tenant":"p","tier":"t"},"tiers":{"t":{"default_model":"m"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d := r.Decide(router.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/responses"}}})
	if d.Reply != nil || d.Outcome == router.OutcomeUnknownPath {
		t.Fatalf("Decide(/v1/responses) = %s %+v, want it passed on", d.Outcome, d.Reply)
	}
}

package extproc

import (
	"context"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// A requestStage is one named step of the downstream request path. The
// stages run in table order on the request body, each timed into
// tollgate_stage_duration_seconds{stage} (and a span when tracing is on). A
// stage returns nil to let the request go on, or the reply that ends the
// exchange: a rejection (rejectWith releases any budget hold) or an answer
// Tollgate gives itself (a cache hit). After the last stage the request is
// forwarded (forward).
//
// Adding a stage is one entry here and one method (in its own file when it
// carries state of its own).
type requestStage struct {
	name string
	run  func(d *downstream, ctx context.Context) *extprocv3.ProcessingResponse
}

// requestStages is the downstream request path after auth (which runs at the
// request headers, stageAuth).
var requestStages = []requestStage{
	{"parse", (*downstream).parseStage},              // size limit, one parse of the body (pkg/llm)
	{"prompt", (*downstream).promptStage},            // registry prompt (x-tollgate-prompt)
	{"complexity", (*downstream).complexityStage},    // virtual alias -> tier's alias
	{"route", (*downstream).routeStage},              // tier allow-list, canary, alias -> targets
	{"guard_input", (*downstream).guardInputStage},   // PII/secrets redaction, injection block, moderation
	{"cache_lookup", (*downstream).cacheLookupStage}, // exact, then semantic, inside the partition
	{"mutate", (*downstream).mutateStage},            // max_tokens cap, stream usage
	{"compress", (*downstream).compressStage},        // opt-in prompt compression (alias or tenant)
	{"ratelimit", (*downstream).rateLimitStage},      // tenant and key RPM/TPM
	{"budget", (*downstream).budgetStage},            // worst-case reservation
}

// A responseStage is one named step of the buffered JSON response path,
// run in table order on the provider's complete answer (streamed answers go
// chunk by chunk through stageStreamChunk instead). It returns nil to go on,
// or the reply that replaces the answer.
type responseStage struct {
	name string
	run  func(d *downstream, ctx context.Context, r *bufferedAnswer) *extprocv3.ProcessingResponse
}

// responseStages is the buffered JSON response path.
var responseStages = []responseStage{
	{"meter", (*downstream).meterStage},              // usage (or an estimate) -> cost, settle the hold
	{"guard_output", (*downstream).guardOutputStage}, // redact or block the answer
	{"cache_store", (*downstream).cacheStoreStage},   // store a clean 200 answer
}

// Stages timed outside the tables.
const (
	stageAuth            = "auth"             // the API key, at the request headers
	stageResponseHeaders = "response_headers" // serving target, mode decision
	stageStreamChunk     = "stream_chunk"     // one SSE chunk: usage, text, output guard
	stageUpstream        = "upstream"         // the upstream role's body rewrite, per attempt
)

// stageNames are the stages timed into tollgate_stage_duration_seconds, in
// the order a request meets them.
func stageNames() []string {
	names := []string{stageAuth}
	for _, s := range requestStages {
		names = append(names, s.name)
	}
	names = append(names, stageResponseHeaders)
	for _, s := range responseStages {
		names = append(names, s.name)
	}
	return append(names, stageStreamChunk, stageUpstream)
}

// runRequestStages runs requestStages on the body and returns the reply
// that ended the exchange early, or nil when every stage let it through.
func (d *downstream) runRequestStages(ctx context.Context) *extprocv3.ProcessingResponse {
	for _, st := range requestStages {
		t := time.Now()
		reply := st.run(d, ctx)
		d.stage(st.name, t)
		if reply != nil {
			return reply
		}
	}
	return nil
}

// runResponseStages runs responseStages on r and returns the reply that
// replaced the answer, or nil.
func (d *downstream) runResponseStages(ctx context.Context, r *bufferedAnswer) *extprocv3.ProcessingResponse {
	for _, st := range responseStages {
		t := time.Now()
		reply := st.run(d, ctx, r)
		d.stage(st.name, t)
		if reply != nil {
			return reply
		}
	}
	return nil
}

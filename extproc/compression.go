package extproc

import (
	"context"
	"strconv"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/pkg/compress"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
)

// compression is what prompt compression did to one request.
type compression struct {
	on    bool  // compression applied to this request (the header is sent)
	saved int64 // prompt tokens removed
}

// compressStage runs after the mutate stage: it compresses the chat
// request by the tenant's (else the alias's) compression settings and
// rewrites the body once. The rate limiter and the budget reservation that
// follow estimate the compressed prompt. A failure keeps the request as the
// client sent it (counted in tollgate_failures_total{layer="compression"}).
func (d *downstream) compressStage(context.Context) *extprocv3.ProcessingResponse {
	set := d.rt.cfg.CompressionFor(d.id.Tenant, d.alias)
	if !set.Enabled || d.op != llm.OpChat {
		return nil
	}
	ws, js, dd := set.Rules()
	opts := compress.Options{Whitespace: ws, JSON: js, Dedupe: dd, MaxPromptTokens: set.MaxPromptTokens}
	// The estimate, not the BPE tokenizer: it is what the rate limiter and
	// the budget reservation count, costs one pass over the bytes (the
	// tokenizer costs milliseconds on a long conversation), and never
	// counts fewer tokens than the provider will, so a history trimmed to
	// max_prompt_tokens by it fits that many real tokens.
	res, err := compress.Apply(d.req, opts, meter.EstimateTokens)
	if err != nil {
		d.s.metrics.Failures.WithLabelValues("compression", "open").Inc()
		d.s.log.Warn("prompt compression failed; the request is sent uncompressed", "alias", d.alias, "err", err)
		return nil
	}
	d.compression.on = true
	if res.Changed {
		d.req = res.Request
		d.compression.saved = res.Saved()
	}
	return nil
}

// compressionHeader reports the saving on the response and counts it, once
// the request has reached a provider.
func (d *downstream) compressionHeader(mut *mutation) {
	if !d.compression.on {
		return
	}
	mut.setHeader(contract.HeaderTokensSaved, strconv.FormatInt(d.compression.saved, 10))
	if d.compression.saved > 0 {
		d.s.metrics.PromptTokensSaved.WithLabelValues(d.rt.tenantLabels.Value(d.id.Tenant), d.rt.modelLabels.Value(d.alias)).
			Add(float64(d.compression.saved))
	}
}

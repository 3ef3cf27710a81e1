package extproc

import (
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/compress"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
)

// headerTokensSaved carries the prompt tokens compression removed, on
// responses to requests that had compression on.
const headerTokensSaved = "x-tollgate-tokens-saved"

// compression is what prompt compression did to one request.
type compression struct {
	on    bool  // compression applied to this request (the header is sent)
	saved int64 // prompt tokens removed
}

// compressPrompt runs after the mutate stage: it compresses the chat
// request by the tenant's (else the alias's) compression settings and
// rewrites the body once. The rate limiter and the budget reservation that
// follow estimate the compressed prompt. A failure keeps the request as the
// client sent it (counted in tollgate_failures_total{layer="compression"}).
func (d *downstream) compressPrompt() {
	set := d.rt.cfg.CompressionFor(d.id.Tenant, d.alias)
	if !set.Enabled || d.op != llm.OpChat {
		return
	}
	ws, js, dd := set.Rules()
	opts := compress.Options{Whitespace: ws, JSON: js, Dedupe: dd, MaxPromptTokens: set.MaxPromptTokens}
	t := time.Now()
	// The estimate, not the BPE tokenizer: it is what the rate limiter and
	// the budget reservation count, costs one pass over the bytes (the
	// tokenizer costs milliseconds on a long conversation), and never
	// counts fewer tokens than the provider will, so a history trimmed to
	// max_prompt_tokens by it fits that many real tokens.
	res, err := compress.Apply(d.req, opts, meter.EstimateTokens)
	d.stage("compress", t)
	if err != nil {
		d.s.metrics.Failures.WithLabelValues("compression", "open").Inc()
		d.s.log.Warn("prompt compression failed; the request is sent uncompressed", "alias", d.alias, "err", err)
		return
	}
	d.compression.on = true
	if res.Changed {
		// In place: the request stages after this one hold the pointer.
		*d.req = *res.Request
		d.compression.saved = res.Saved()
	}
}

// compressionHeader reports the saving on the response and counts it, once
// the request has reached a provider.
func (d *downstream) compressionHeader(mut *mutation) {
	if !d.compression.on {
		return
	}
	mut.setHeader(headerTokensSaved, strconv.FormatInt(d.compression.saved, 10))
	if d.compression.saved > 0 {
		d.s.metrics.PromptTokensSaved.WithLabelValues(d.rt.tenantLabels.Value(d.id.Tenant), d.rt.modelLabels.Value(d.alias)).
			Add(float64(d.compression.saved))
	}
}

package extproc

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

var noopSpan = trace.SpanFromContext(context.Background())

// startSpan opens the request's span, parented on the client's traceparent.
// Without a tracer (tracing off) it does nothing: the span stays a no-op.
func (d *downstream) startSpan(ctx context.Context) {
	if !d.s.tracing {
		return
	}
	ctx = telemetry.TraceContext(ctx, d.headers.get("traceparent"), "")
	_, d.span = d.s.tracer.Start(ctx, "tollgate.request",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(d.start))
}

// stage times one stage into tollgate_stage_duration_seconds and, when the
// request is traced, records it as a child span.
func (d *downstream) stage(name string, start time.Time) {
	end := time.Now()
	d.s.observeStage(name, end.Sub(start))
	if !d.span.IsRecording() {
		return
	}
	ctx := trace.ContextWithSpan(context.Background(), d.span)
	_, sp := d.s.tracer.Start(ctx, "tollgate."+name, trace.WithTimestamp(start))
	sp.End(trace.WithTimestamp(end))
}

// endSpan closes the request span with the GenAI semantic-convention
// attributes (gen_ai.*) and Tollgate's own.
func (d *downstream) endSpan(cost meter.Money, outcome string) {
	if !d.span.IsRecording() {
		return
	}
	op := d.op.String()
	name := op
	if d.req != nil {
		name += " " + d.req.Model
	}
	d.span.SetName(name)
	attrs := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", op),
		attribute.String("tollgate.tenant", d.id.Tenant),
		attribute.String("tollgate.outcome", outcome),
	}
	if d.req != nil {
		attrs = append(attrs,
			attribute.String("gen_ai.request.model", d.req.Model),
			attribute.String("gen_ai.provider.name", d.provider),
			attribute.String("gen_ai.response.model", d.target),
			attribute.Int64("gen_ai.usage.input_tokens", d.usage.InputTokens),
			attribute.Int64("gen_ai.usage.output_tokens", d.usage.OutputTokens),
			attribute.Float64("tollgate.cost_usd", cost.USD()),
			attribute.String("tollgate.cache", d.cacheState),
		)
		if d.req.MaxTokens > 0 {
			attrs = append(attrs, attribute.Int64("gen_ai.request.max_tokens", d.req.MaxTokens))
		}
	}
	if d.prompt != "" {
		attrs = append(attrs, attribute.String("tollgate.prompt", d.prompt))
	}
	if d.tier != "" {
		attrs = append(attrs, attribute.String("tollgate.tier", d.tier))
	}
	d.span.SetAttributes(attrs...)
	if d.status >= 500 || outcome == "aborted" {
		d.span.SetStatus(codes.Error, outcome)
	}
	d.span.End()
}

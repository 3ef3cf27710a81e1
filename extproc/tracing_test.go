package extproc

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

func TestSpansFollowGenAIConventionsAndTraceparent(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	cfg, err := config.Parse("t.yaml", []byte(testConfig))
	require.NoError(t, err)
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: telemetry.NewMetrics(prometheus.NewRegistry()), Tracer: tp.Tracer(telemetry.TracerName)})
	require.NoError(t, err)

	headers := map[string]string{}
	for k, v := range demoHeaders {
		headers[k] = v
	}
	headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	d := newDownstream(srv, srv.rt.Load())
	ctx := t.Context()
	for _, m := range request(`{"model":"small","messages":[{"role":"user","content":"hi"}]}`, headers) {
		_, err = d.handle(ctx, m)
		require.NoError(t, err)
	}
	_, err = d.handle(ctx, responseHeaders(":status", "200", "content-type", "application/json"))
	require.NoError(t, err)
	_, err = d.handle(ctx, responseBody(`{"model":"gpt-4o-mini","choices":[{"message":{"content":"yo"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}`))
	require.NoError(t, err)
	d.finish(ctx, false) // the stream ends

	spans := rec.Ended()
	var root sdktrace.ReadOnlySpan
	stages := map[string]bool{}
	for _, s := range spans {
		if s.Name() == "chat small" {
			root = s
		} else {
			stages[s.Name()] = true
		}
	}
	require.NotNil(t, root, "the request span is named {operation} {request model}")
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", root.SpanContext().TraceID().String(), "parented on the incoming traceparent")
	assert.Equal(t, "00f067aa0ba902b7", root.Parent().SpanID().String())
	got := map[string]any{}
	for _, a := range root.Attributes() {
		got[string(a.Key)] = a.Value.AsInterface()
	}
	assert.Equal(t, "chat", got["gen_ai.operation.name"])
	assert.Equal(t, "small", got["gen_ai.request.model"])
	assert.Equal(t, "fake", got["gen_ai.provider.name"])
	assert.Equal(t, int64(3), got["gen_ai.usage.input_tokens"])
	assert.Equal(t, int64(4), got["gen_ai.usage.output_tokens"])
	for _, st := range []string{"tollgate.auth", "tollgate.parse", "tollgate.route", "tollgate.meter"} {
		assert.True(t, stages[st], "stage span %s", st)
	}
}

// BenchmarkStageUntraced is the per-stage cost when tracing is off.
func BenchmarkStageUntraced(b *testing.B) {
	ts := startServer(b, nil)
	d := newDownstream(ts.srv, ts.srv.rt.Load())
	b.ReportAllocs()
	for b.Loop() {
		d.stage("auth", d.start)
	}
}

package envoysim

import (
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

func TestLoadFilter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		wantErr bool
		check   func(t *testing.T, f *extprocfilterv3.ExternalProcessor)
	}{
		{
			name: "bare yaml",
			in: `
processing_mode:
  request_header_mode: SKIP
  request_body_mode: BUFFERED
  response_body_mode: BUFFERED
request_attributes: [request.headers, request.path]
allow_mode_override: true
message_timeout: 0.25s
grpc_service:
  envoy_grpc: {cluster_name: tollgate}
  initial_metadata: [{key: x-role, value: downstream}]
`,
			check: func(t *testing.T, f *extprocfilterv3.ExternalProcessor) {
				assert.Equal(t, extprocfilterv3.ProcessingMode_SKIP, f.GetProcessingMode().GetRequestHeaderMode())
				assert.Equal(t, []string{"request.headers", "request.path"}, f.GetRequestAttributes())
				assert.Equal(t, 250*time.Millisecond, f.GetMessageTimeout().AsDuration())
				assert.Equal(t, "x-role", f.GetGrpcService().GetInitialMetadata()[0].GetKey())
			},
		},
		{
			name: "http filter wrapper",
			in: `
name: envoy.filters.http.ext_proc
typed_config:
  "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
  failure_mode_allow: true
`,
			check: func(t *testing.T, f *extprocfilterv3.ExternalProcessor) { assert.True(t, f.GetFailureModeAllow()) },
		},
		{name: "json", in: `{"allowModeOverride": true}`, check: func(t *testing.T, f *extprocfilterv3.ExternalProcessor) { assert.True(t, f.GetAllowModeOverride()) }},
		{name: "unknown field", in: "no_such_field: 1", wantErr: true},
		{name: "wrong type url", in: "typed_config: {'@type': type.googleapis.com/x.Y}", wantErr: true},
		{name: "not a mapping", in: "- a", wantErr: true},
		{name: "bad yaml", in: "a: [", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := LoadFilter([]byte(tc.in))
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			tc.check(t, f)
		})
	}
}

func FuzzLoadFilter(f *testing.F) {
	f.Add([]byte("allow_mode_override: true"))
	f.Add([]byte(`{"processingMode":{"requestBodyMode":"BUFFERED"}}`))
	f.Add([]byte("typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := LoadFilter(data)
		if err == nil {
			// Whatever parsed must survive a protobuf round trip.
			b, merr := proto.Marshal(pf)
			require.NoError(t, merr)
			back := &extprocfilterv3.ExternalProcessor{}
			require.NoError(t, proto.Unmarshal(b, back))
			assert.True(t, proto.Equal(pf, back))
		}
	})
}

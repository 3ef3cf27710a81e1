package envoysim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestEvalAttribute(t *testing.T) {
	req := &headerMap{}
	for _, kv := range [][2]string{
		{":authority", "api.example"}, {":path", "/v1/x?y=1"}, {":method", "POST"}, {":scheme", "https"},
		{"x-request-id", "rid"}, {"x-m", "a"}, {"x-m", "b"}, {"user-agent", "ua"},
	} {
		req.add(kv[0], kv[1])
	}
	resp := &headerMap{}
	resp.add(":status", "429")
	c := &attrContext{reqHeaders: req, respHeaders: resp, remoteAddr: "10.0.0.1:5555", localAddr: "127.0.0.1:80", clusterName: "openai", protocolName: "HTTP/1.1"}
	for _, tc := range []struct {
		expr string
		want any // nil: omitted
	}{
		{"request.path", "/v1/x?y=1"},
		{"request.url_path", "/v1/x"},
		{"request.query", "y=1"},
		{"request.method", "POST"},
		{"request.host", "api.example"},
		{"request.scheme", "https"},
		{"request.id", "rid"},
		{"request.useragent", "ua"},
		{"request.protocol", "HTTP/1.1"},
		{"request.headers", "CelMap value"},
		{"request.headers['x-m']", "a,b"},
		{`request.headers["X-M"]`, "a,b"},
		{"request.headers['missing']", nil},
		{"request.headers['bad key']", nil},
		{"request.headers[x-m]", nil},
		{"response.code", float64(429)},
		{"response.headers", "CelMap value"},
		{"source.address", "10.0.0.1:5555"},
		{"source.port", float64(5555)},
		{"destination.port", float64(80)},
		{"xds.cluster_name", "openai"},
		{"connection.mtls", nil},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			v, ok := evalAttribute(tc.expr, c)
			if tc.want == nil {
				assert.False(t, ok)
				return
			}
			assert.True(t, ok)
			assert.Equal(t, tc.want, v.AsInterface())
		})
	}
}

func TestEvalAttributesOnRequestPath(t *testing.T) {
	req := &headerMap{}
	req.add(":path", "/")
	got := evalAttributes([]string{"response.code", "request.path"}, &attrContext{reqHeaders: req})
	assert.Equal(t, map[string]*structpb.Value{"request.path": structpb.NewStringValue("/")}, got.GetFields())
}

func FuzzEvalAttribute(f *testing.F) {
	for _, s := range []string{"request.headers['x']", "request.path", `response.headers["a"]`, "request.headers[", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		req := &headerMap{}
		req.add("x", "1")
		v, ok := evalAttribute(expr, &attrContext{reqHeaders: req})
		if ok {
			assert.NotNil(t, v)
		}
	})
}

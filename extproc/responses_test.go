package extproc

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/contract"
)

func responsesHeaders() map[string]string {
	h := map[string]string{}
	for k, v := range demoHeaders {
		h[k] = v
	}
	h[":path"] = "/v1/responses"
	return h
}

func TestResponsesJSONMetered(t *testing.T) {
	ts := startServer(t, nil)
	body := `{"model":"small","input":"hi","max_output_tokens":64}`
	out, err := exchange(t, ts.client, nil, append(request(body, responsesHeaders()),
		responseHeaders(":status", "200", "content-type", "application/json"),
		responseBody(responsesJSON))...)
	require.NoError(t, err)
	require.Len(t, out, 4)
	route, _ := headerValue(out[1].GetRequestBody().GetResponse().GetHeaderMutation(), contract.HeaderRoute)
	assert.Equal(t, "small", route, "admitted and routed, not a 404")
	cost, ok := headerValue(out[3].GetResponseBody().GetResponse().GetHeaderMutation(), contract.HeaderCost)
	require.True(t, ok)
	// 420 input and 31 output tokens of gpt-4o-mini at 0.15 / 0.60 USD per M.
	assert.Equal(t, "0.0000816", cost)
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.Requests.WithLabelValues("demo", "small", "ok")))
}

func TestResponsesStreamMeteredFromCompleted(t *testing.T) {
	ts := startServer(t, nil)
	body := `{"model":"small","input":"hi","stream":true}`
	msgs := append(request(body, responsesHeaders()), responseHeaders(":status", "200", "content-type", "text/event-stream"))
	msgs = append(msgs, responsesStream(3)...)
	out, err := exchange(t, ts.client, nil, msgs...)
	require.NoError(t, err)
	require.Len(t, out, len(msgs))
	assert.NotContains(t, string(out[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody()), "stream_options",
		"a Responses stream always ends with its usage: nothing is added")
	for _, o := range out[4:] {
		assert.Nil(t, o.GetResponseBody().GetResponse().GetBodyMutation(), "events pass unchanged without an output guard")
	}
	assert.InDelta(t, 0.0000816, testutil.ToFloat64(ts.metrics.CostUSD.WithLabelValues("demo", "fake", "gpt-4o-mini")), 1e-15)
	assert.Zero(t, testutil.ToFloat64(ts.metrics.EstimatedRequests.WithLabelValues("demo", "small")))
}

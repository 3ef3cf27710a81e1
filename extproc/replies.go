package extproc

import (
	"strconv"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/tollgate-dev/tollgate/pkg/llm"
)

// rejection is a client-facing error: it becomes an immediate_response with
// an OpenAI-shaped JSON body.
type rejection struct {
	status  int
	typ     string
	code    string
	message string
	outcome string // tollgate_requests_total outcome label
	headers map[string]string
}

func (r *rejection) Error() string { return r.message }

func reject(status int, typ, code, outcome, message string) *rejection {
	return &rejection{status: status, typ: typ, code: code, outcome: outcome, message: message}
}

func immediate(r *rejection) *extprocv3.ProcessingResponse {
	var m mutation
	m.setHeader("content-type", "application/json")
	for k, v := range r.headers {
		m.setHeader(k, v)
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(r.status)},
			Headers: m.proto(),
			Body:    llm.ErrorJSON(r.message, r.typ, r.code),
			Details: "tollgate_" + r.code,
		},
	}}
}

// immediateBody answers with a prepared body (cache hits).
func immediateBody(status int, body []byte, m *mutation) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: m.proto(),
			Body:    body,
			Details: "tollgate_cache_hit",
		},
	}}
}

func common(m *mutation, body []byte, replaceBody bool) *extprocv3.CommonResponse {
	c := &extprocv3.CommonResponse{HeaderMutation: m.proto()}
	if replaceBody {
		c.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}}
	}
	return c
}

func requestHeadersReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
		RequestHeaders: &extprocv3.HeadersResponse{Response: c}}}
}

func requestBodyReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
		RequestBody: &extprocv3.BodyResponse{Response: c}}}
}

func responseHeadersReply(c *extprocv3.CommonResponse, override *filterv3.ProcessingMode) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{
		Response:     &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: c}},
		ModeOverride: override,
	}
}

func responseBodyReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
		ResponseBody: &extprocv3.BodyResponse{Response: c}}}
}

// Mode overrides sent on the response-headers reply. Only the response body
// mode is meaningful there; the other fields repeat the shipped mode.
var (
	overrideStreamed = &filterv3.ProcessingMode{
		ResponseHeaderMode: filterv3.ProcessingMode_SEND,
		ResponseBodyMode:   filterv3.ProcessingMode_STREAMED,
	}
	overrideNoBody = &filterv3.ProcessingMode{
		ResponseHeaderMode: filterv3.ProcessingMode_SEND,
		ResponseBodyMode:   filterv3.ProcessingMode_NONE,
	}
	// overridePassThrough, on the request-headers reply, ends the exchange
	// for a path Tollgate does not handle: no body, no response messages.
	// Envoy applies an override to both directions' state
	// (ext_proc.cc Filter::onReceiveMessage).
	overridePassThrough = &filterv3.ProcessingMode{
		RequestBodyMode:     filterv3.ProcessingMode_NONE,
		RequestTrailerMode:  filterv3.ProcessingMode_SKIP,
		ResponseHeaderMode:  filterv3.ProcessingMode_SKIP,
		ResponseBodyMode:    filterv3.ProcessingMode_NONE,
		ResponseTrailerMode: filterv3.ProcessingMode_SKIP,
	}
)

func formatUSD(usd float64) string { return strconv.FormatFloat(usd, 'f', -1, 64) }

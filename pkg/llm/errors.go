package llm

import (
	"encoding/json"
)

// Error types and codes of the OpenAI-shaped error bodies Tollgate sends.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"

	CodeInvalidJSON     = "invalid_json"
	CodeInvalidAPIKey   = "invalid_api_key"
	CodeModelNotFound   = "model_not_found"
	CodeBudgetExceeded  = "budget_exceeded"
	CodeContentBlocked  = "content_blocked"
	CodeTooLarge        = "request_too_large"
	CodeUpstreamFailure = "upstream_unavailable"
	CodeInternal        = "internal_error"
)

type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// ErrorJSON renders {"error":{"message","type","param","code"}}.
func ErrorJSON(message, typ, code string) []byte {
	b, err := json.Marshal(errorEnvelope{Error: errorBody{Message: message, Type: typ, Code: code}})
	if err != nil { // cannot happen for strings; keep a valid body regardless
		return []byte(`{"error":{"message":"internal error","type":"server_error","param":null,"code":"internal_error"}}`)
	}
	return b
}

// ErrorEvent renders an error as one SSE event (used to end a stream that
// the gateway must stop, e.g. on an output guardrail block).
func ErrorEvent(message, typ, code string) []byte {
	return AppendEvent(nil, ErrorJSON(message, typ, code))
}

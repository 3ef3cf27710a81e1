package extproc

import (
	"context"
	"strconv"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

// upstream is the per-attempt role, running in a target cluster's upstream
// filter chain: Envoy sends the buffered request body with the
// xds.cluster_name attribute of the attempt, once per retry.
type upstream struct {
	s        *Server
	rt       *runtime
	target   config.Target
	resolved bool
	done     bool
}

func newUpstream(s *Server, rt *runtime) *upstream { return &upstream{s: s, rt: rt} }

func (u *upstream) complete() bool               { return u.done }
func (u *upstream) finish(context.Context, bool) {}

func (u *upstream) handle(_ context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		// Not the shipped upstream mode, but harmless: learn the target
		// early and let the body carry the rewrite.
		u.resolve(req)
		return requestHeadersReply(nil), nil
	case *extprocv3.ProcessingRequest_RequestBody:
		return u.onBody(req, r.RequestBody.GetBody()), nil
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		u.done = true
		if !u.resolved {
			return responseHeadersReply(nil, nil), nil
		}
		var m mutation
		m.setHeader(HeaderProvider, u.target.Provider)
		m.setHeader(HeaderModel, u.target.Model)
		return responseHeadersReply(common(&m, nil, false), nil), nil
	case *extprocv3.ProcessingRequest_ResponseBody:
		return responseBodyReply(nil), nil
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}, nil
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}, nil
	}
	return nil, &protocolError{reason: "empty", detail: "ProcessingRequest without a request case"}
}

func (u *upstream) resolve(req *extprocv3.ProcessingRequest) {
	if u.resolved {
		return
	}
	attrs := attributes(req)
	if attrs == nil {
		return
	}
	name := valueString(attrs.GetFields()["xds.cluster_name"])
	alias, i, ok := translate.ParseTargetCluster(name)
	if !ok {
		return
	}
	m, ok := u.rt.cfg.Models[alias]
	if !ok || i >= len(m.Targets) {
		return
	}
	u.target, u.resolved = m.Targets[i], true
}

// onBody rewrites the model for this attempt's target and injects the
// provider credential.
func (u *upstream) onBody(req *extprocv3.ProcessingRequest, body []byte) *extprocv3.ProcessingResponse {
	t := time.Now()
	defer u.s.timeStage("upstream", t)
	u.resolve(req)
	if !u.resolved {
		// Without the cluster name the attempt goes out as the downstream
		// role left it; count it so a misconfigured filter is visible.
		u.s.metrics.Failures.WithLabelValues("upstream_target", "open").Inc()
		u.s.log.Warn("upstream ext_proc: no known xds.cluster_name; attempt sent unchanged")
		return requestBodyReply(nil)
	}
	var m mutation
	m.removeHeader("x-api-key")
	prov := u.rt.cfg.Providers[u.target.Provider]
	if prov.APIKeyEnv != "" {
		if key := u.rt.getenv(prov.APIKeyEnv); key != "" {
			m.setHeader("authorization", "Bearer "+key)
		} else {
			u.s.metrics.Failures.WithLabelValues("credentials", "open").Inc()
			u.s.log.Error("provider credential variable is empty", "provider", u.target.Provider, "env", prov.APIKeyEnv)
			m.removeHeader("authorization")
		}
	} else {
		m.removeHeader("authorization")
	}
	newBody := body
	if gjson.GetBytes(body, "model").Str != u.target.Model {
		if b, err := sjson.SetBytes(body, "model", u.target.Model); err == nil {
			newBody = b
		}
	}
	changed := len(newBody) != len(body) || string(newBody) != string(body)
	// Always: Envoy keeps header mutations on the router's header map across
	// retries, so a length set for an earlier attempt's body would be
	// stale for this one.
	m.setHeader("content-length", strconv.Itoa(len(newBody)))
	return requestBodyReply(common(&m, newBody, changed))
}

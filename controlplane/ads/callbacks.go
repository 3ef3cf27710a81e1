package ads

import (
	"context"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// callbacks log and count NACKs. Envoy may send its node only on the first
// message of a stream (set_node_on_first_message_only), so the node is
// remembered per stream.
func (s *Server) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(context.Context, int64, string) error { return nil },
		StreamClosedFunc: func(id int64, _ *corev3.Node) {
			s.forget(id)
		},
		DeltaStreamOpenFunc: func(context.Context, int64, string) error { return nil },
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) {
			s.forget(id)
		},
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			node := s.remember(id, req.GetNode())
			if req.GetErrorDetail() != nil {
				s.nack(node, req.GetTypeUrl(), req.GetResponseNonce(), req.GetVersionInfo(), req.GetErrorDetail().GetMessage())
			}
			return nil
		},
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			node := s.remember(id, req.GetNode())
			if req.GetErrorDetail() != nil {
				s.nack(node, req.GetTypeUrl(), req.GetResponseNonce(), "", req.GetErrorDetail().GetMessage())
			}
			return nil
		},
	}
}

func (s *Server) remember(id int64, n *corev3.Node) *corev3.Node {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if n != nil {
		s.nodes[id] = n
		return n
	}
	return s.nodes[id]
}

func (s *Server) forget(id int64) {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	delete(s.nodes, id)
}

func (s *Server) nack(node *corev3.Node, typeURL, nonce, version, detail string) {
	s.metrics.nacks.WithLabelValues(shortType(typeURL)).Inc()
	s.log.Error("xds NACK",
		"node", node.GetId(), "node_cluster", node.GetCluster(), "type", typeURL,
		"nonce", nonce, "acked_version", version, "error", detail, "serving_version", s.Version())
}

// shortType turns a type URL into a bounded label value ("Cluster").
func shortType(typeURL string) string {
	switch typeURL {
	case "type.googleapis.com/envoy.config.listener.v3.Listener":
		return "listener"
	case "type.googleapis.com/envoy.config.route.v3.RouteConfiguration":
		return "route"
	case "type.googleapis.com/envoy.config.cluster.v3.Cluster":
		return "cluster"
	case "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment":
		return "endpoint"
	case "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig":
		return "extension_config"
	}
	return "other"
}

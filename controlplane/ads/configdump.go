package ads

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// ConfigDump is what GET /config_dump on the admin port answers: the
// snapshot every node is served, as JSON.
type ConfigDump struct {
	// Version is the snapshot's version (the same for every type).
	Version string `json:"version"`
	// Config is the file the snapshot was translated from.
	Config string `json:"config"`
	// LastReloadError is why the latest change of the file was rejected
	// (the snapshot is then the last good one); empty when it applied.
	LastReloadError string `json:"last_reload_error,omitempty"`
	// Nodes are the nodes with an open xDS stream (id and cluster), sorted.
	// Every node gets this snapshot.
	Nodes []DumpNode `json:"nodes"`
	// Resources by kind (listeners, routes, clusters, endpoints,
	// extension_configs), each sorted by name, in Envoy's JSON form
	// (protojson with proto field names, Any types expanded with @type).
	Resources map[string][]json.RawMessage `json:"resources"`
}

// DumpNode is one connected node.
type DumpNode struct {
	ID      string `json:"id"`
	Cluster string `json:"cluster,omitempty"`
}

// dumpKinds names each snapshot type in the dump.
var dumpKinds = map[resource.Type]string{
	resource.ListenerType:        "listeners",
	resource.RouteType:           "routes",
	resource.ClusterType:         "clusters",
	resource.EndpointType:        "endpoints",
	resource.ExtensionConfigType: "extension_configs",
}

// ConfigDump returns the snapshot being served, consistent with its version.
func (s *Server) ConfigDump() (*ConfigDump, error) {
	s.mu.Lock()
	version, lastErr := s.version, s.lastErr
	snap, err := s.cache.GetSnapshot(snapshotKey)
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("config dump: %w", err)
	}
	d := &ConfigDump{
		Version:         version,
		Config:          s.path,
		LastReloadError: lastErr,
		Nodes:           s.connectedNodes(),
		Resources:       map[string][]json.RawMessage{},
	}
	opts := protojson.MarshalOptions{UseProtoNames: true}
	for _, t := range snapshotTypes {
		byName := snap.GetResources(t)
		names := make([]string, 0, len(byName))
		for n := range byName {
			names = append(names, n)
		}
		slices.Sort(names)
		items := make([]json.RawMessage, 0, len(names))
		for _, n := range names {
			js, err := opts.Marshal(byName[n])
			if err != nil {
				return nil, fmt.Errorf("config dump: %s %s: %w", proto.MessageName(byName[n]), n, err)
			}
			// protojson's spacing is deliberately unstable; compact it.
			var buf bytes.Buffer
			if err := json.Compact(&buf, js); err != nil {
				return nil, fmt.Errorf("config dump: %s: %w", n, err)
			}
			items = append(items, buf.Bytes())
		}
		d.Resources[dumpKinds[t]] = items
	}
	return d, nil
}

// connectedNodes lists the distinct nodes of the open streams.
func (s *Server) connectedNodes() []DumpNode {
	s.nodesMu.Lock()
	seen := map[DumpNode]bool{}
	for _, n := range s.nodes {
		seen[DumpNode{ID: n.GetId(), Cluster: n.GetCluster()}] = true
	}
	s.nodesMu.Unlock()
	out := make([]DumpNode, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b DumpNode) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Cluster, b.Cluster)
	})
	return out
}

// ConfigDumpHandler serves ConfigDump as indented JSON (GET /config_dump on
// the admin port of `tollgate xds`). ?resource=clusters (or listeners,
// routes, endpoints, extension_configs) keeps one kind.
func (s *Server) ConfigDumpHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := s.ConfigDump()
		if err != nil {
			s.log.Error("config dump failed", "error", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if kind := r.URL.Query().Get("resource"); kind != "" {
			items, ok := d.Resources[kind]
			if !ok {
				http.Error(w, fmt.Sprintf("unknown resource %q: listeners, routes, clusters, endpoints or extension_configs", kind), http.StatusBadRequest)
				return
			}
			d.Resources = map[string][]json.RawMessage{kind: items}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d)
	})
}

package ads_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	sotw "github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tollgate-dev/tollgate/controlplane/ads"
	"github.com/tollgate-dev/tollgate/controlplane/translate"
)

func getDump(t *testing.T, url string) (int, *ads.ConfigDump) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var d ads.ConfigDump
	require.NoError(t, json.Unmarshal(body, &d), "%s", body)
	return resp.StatusCode, &d
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, raw))
	return buf.String()
}

func dumpClusterNames(t *testing.T, d *ads.ConfigDump) []string {
	t.Helper()
	var out []string
	for _, raw := range d.Resources["clusters"] {
		var c clusterv3.Cluster
		require.NoError(t, protojson.Unmarshal(raw, &c), "a dumped cluster reads back as a Cluster")
		out = append(out, c.GetName())
	}
	return out
}

// TestConfigDump: /config_dump answers the snapshot being served, with its
// version, the connected nodes, a reload and a rejected reload.
func TestConfigDump(t *testing.T) {
	f := start(t, false, configYAML("alpha"))
	hs := httptest.NewServer(f.srv.ConfigDumpHandler())
	t.Cleanup(hs.Close)

	// An Envoy connects and gets the clusters the dump shows.
	c := sotw.NewADSClient(f.ctx, &corev3.Node{Id: "envoy-a", Cluster: "edge"}, resource.ClusterType)
	require.NoError(t, c.InitConnect(f.conn))
	r := fetch(t, c, 5*time.Second)
	require.NoError(t, c.Ack())

	code, d := getDump(t, hs.URL)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, f.srv.Version(), d.Version)
	assert.Equal(t, f.path, d.Config)
	assert.Empty(t, d.LastReloadError)
	assert.Equal(t, []ads.DumpNode{{ID: "envoy-a", Cluster: "edge"}}, d.Nodes)
	assert.Equal(t, clusterNames(t, r.Resources), dumpClusterNames(t, d), "the same clusters, sorted by name")
	for _, kind := range []string{"listeners", "routes", "extension_configs"} {
		assert.Len(t, d.Resources[kind], 1, kind)
	}
	assert.Contains(t, compact(t, d.Resources["listeners"][0]), `"per_connection_buffer_limit_bytes":`, "proto field names")
	assert.Contains(t, compact(t, d.Resources["routes"][0]), `"@type":"type.googleapis.com/`, "Any types expanded")

	// A change is dumped with its new version.
	f.write(t, configYAML("alpha", "beta"))
	fetch(t, c, 10*time.Second)
	require.NoError(t, c.Ack())
	code, d2 := getDump(t, hs.URL+"?resource=clusters")
	require.Equal(t, http.StatusOK, code)
	assert.NotEqual(t, d.Version, d2.Version)
	assert.Contains(t, dumpClusterNames(t, d2), translate.AliasClusterName("beta"))
	assert.Len(t, d2.Resources, 1, "?resource keeps one kind")

	// A rejected file keeps the last good snapshot and says why.
	f.write(t, []byte(badConfig))
	require.Eventually(t, func() bool {
		_, d3 := getDump(t, hs.URL)
		return d3.LastReloadError != ""
	}, 5*time.Second, 10*time.Millisecond)
	_, d3 := getDump(t, hs.URL)
	assert.Equal(t, d2.Version, d3.Version)
	assert.Contains(t, d3.LastReloadError, "missing")
	assert.Contains(t, dumpClusterNames(t, d3), translate.AliasClusterName("beta"))

	code, _ = getDump(t, hs.URL+"?resource=secrets")
	assert.Equal(t, http.StatusBadRequest, code)
}

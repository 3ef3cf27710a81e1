package envoysim

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
)

func TestDefaultFilterEqualsTranslator(t *testing.T) {
	cfg, err := config.Default()
	require.NoError(t, err)
	assert.True(t, proto.Equal(translate.DownstreamExtProc(cfg), DefaultFilter()))
}

// TestFromTollgate checks that the emulator runs what the control plane
// renders (one source of truth): the downstream ext_proc filter of the
// listener, one route per alias matching the tollgate.route metadata with
// the alias's aggregate cluster, its members as priorities (with the
// endpoint metadata naming each target), the aggregate's upstream ext_proc
// filter and circuit breaker, the route's retry policy, and the catch-all
// direct response.
func TestFromTollgate(t *testing.T) {
	cfg, err := config.Default()
	require.NoError(t, err)
	c, err := FromTollgate(cfg, nil, nil)
	require.NoError(t, err)
	assert.True(t, proto.Equal(translate.DownstreamExtProc(cfg), c.Filter))
	require.NotNil(t, c.chain)
	assert.Equal(t, int(translate.BufferLimit(cfg)), c.BufferLimit)
	entries := c.chain.table.entries
	require.Len(t, entries, len(cfg.Models)+1)
	for _, e := range entries[:len(entries)-1] {
		require.Len(t, e.metadata, 1)
		alias := e.metadata[0].exact
		assert.Equal(t, contract.MetadataNamespace, e.metadata[0].filter)
		assert.Equal(t, contract.MetadataRoute, e.metadata[0].key)
		m, ok := cfg.Models[alias]
		require.True(t, ok, alias)
		rt := e.route
		require.NotNil(t, rt, alias)
		assert.Equal(t, translate.AliasClusterName(alias), rt.cluster)
		require.Len(t, rt.targets, len(m.Targets), alias)
		for i, tg := range m.Targets {
			assert.Equal(t, translate.TargetClusterName(alias, i), rt.targets[i].cluster)
			u, err := url.Parse(cfg.Providers[tg.Provider].BaseURL)
			require.NoError(t, err)
			assert.Equal(t, u.Host, rt.targets[i].url.Host)
			md := rt.targets[i].metadata[contract.MetadataNamespace].AsMap()
			assert.Equal(t, tg.Provider, md[contract.HostProvider])
			assert.Equal(t, tg.Model, md[contract.HostModel])
		}
		assert.True(t, proto.Equal(translate.UpstreamExtProc(cfg), rt.upFilterConfig), "the aggregate's upstream filter")
		assert.Equal(t, len(m.Targets)-1, rt.retries)
		assert.True(t, rt.prevPriorities)
		assert.Equal(t, 1024, rt.maxRetries)
		assert.True(t, rt.retriableStatus(429))
		assert.True(t, rt.retriableStatus(503))
		assert.False(t, rt.retriableStatus(400))
	}
	last := entries[len(entries)-1]
	require.NotNil(t, last.direct)
	assert.Equal(t, 404, last.direct.status)
	assert.Equal(t, translate.NotFoundBody, string(last.direct.body))
	// The result is a valid emulator config once the address is set.
	c.ExtProcAddr = "127.0.0.1:1"
	sim, err := New(c)
	require.NoError(t, err)
	require.NoError(t, sim.Close())
}

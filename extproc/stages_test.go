package extproc

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// documentedStages reads the stage names of the table between the markers
// <!-- stages:KIND --> and <!-- /stages:KIND --> in docs/ARCHITECTURE.md.
func documentedStages(t *testing.T, kind string) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/ARCHITECTURE.md")
	require.NoError(t, err)
	s := string(doc)
	open, end := "<!-- stages:"+kind+" -->", "<!-- /stages:"+kind+" -->"
	i, j := strings.Index(s, open), strings.Index(s, end)
	require.True(t, i >= 0 && j > i, "markers for %s stages", kind)
	var names []string
	row := regexp.MustCompile("^\\s*\\| `([a-z_]+)` \\|")
	for _, line := range strings.Split(s[i:j], "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// TestStageTableDocumented: the architecture document lists exactly the
// stages the tables run, in their order.
func TestStageTableDocumented(t *testing.T) {
	req, resp := tableNames()
	assert.Equal(t, req, documentedStages(t, "request"))
	assert.Equal(t, resp, documentedStages(t, "response"))
}

// TestEveryStageIsTimed: one exchange through the server observes every
// stage of the request and JSON response tables, under the table's name.
func TestEveryStageIsTimed(t *testing.T) {
	ts := startServer(t, nil)
	_, err := exchange(t, ts.client, nil, append(request(chat2KiB(), demoHeaders),
		responseHeaders(":status", "200", "content-type", "application/json"),
		responseBody(jsonResponse))...)
	require.NoError(t, err)
	counts := map[string]uint64{}
	mfs, err := ts.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "tollgate_stage_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	req, resp := tableNames()
	for _, n := range append(append(req, resp...), stageAuth, stageResponseHeaders) {
		assert.Equal(t, uint64(1), counts[n], "stage %s", n)
	}
}

// tableNames are the names of the request and response stage tables.
func tableNames() (req, resp []string) {
	for _, s := range requestStages {
		req = append(req, s.name)
	}
	for _, s := range responseStages {
		resp = append(resp, s.name)
	}
	return req, resp
}

package envoysim

import (
	"errors"
	"testing"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func baseHeaders() *headerMap {
	h := &headerMap{}
	for _, kv := range [][2]string{
		{":authority", "host"}, {":path", "/"}, {":method", "GET"}, {":scheme", "http"},
		{"x-a", "1"}, {"x-a", "2"}, {"x-envoy-original", "o"},
	} {
		h.add(kv[0], kv[1])
	}
	return h
}

func TestApplyHeaderMutation(t *testing.T) {
	bools := func(b bool) *wrapperspb.BoolValue { return wrapperspb.Bool(b) }
	for _, tc := range []struct {
		name      string
		rules     *mutationrulesv3.HeaderMutationRules
		m         *extprocv3.HeaderMutation
		replacing bool
		removeCL  bool
		wantErr   bool
		want      map[string][]string // checked keys
		rejected  int
	}{
		{
			name: "set overwrites all values by default",
			m:    &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-a", "3")}},
			want: map[string][]string{"x-a": {"3"}},
		},
		{
			name: "append adds a value",
			m:    &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-a", "3", true)}},
			want: map[string][]string{"x-a": {"1", "2", "3"}},
		},
		{
			name: "uppercase key is lowercased",
			m:    &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("X-New", "v")}},
			want: map[string][]string{"x-new": {"v"}},
		},
		{
			name: "value without raw_value sets an empty header",
			m:    &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-v", Value: "ignored"}}}},
			want: map[string][]string{"x-v": {""}},
		},
		{
			name:     "remove pseudo and host ignored",
			m:        &extprocv3.HeaderMutation{RemoveHeaders: []string{":path", "host", "x-a"}},
			want:     map[string][]string{":path": {"/"}, "x-a": nil},
			rejected: 2,
		},
		{
			name:     "routing and envoy headers disallowed by default",
			m:        &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":authority", "x"), setHeader(":method", "PUT"), setHeader(":scheme", "https"), setHeader("host", "x"), setHeader("x-envoy-original", "n"), setHeader(":path", "/new")}},
			want:     map[string][]string{":authority": {"host"}, ":method": {"GET"}, ":scheme": {"http"}, "x-envoy-original": {"o"}, ":path": {"/new"}},
			rejected: 5,
		},
		{
			name:  "allow_all_routing and allow_envoy",
			rules: &mutationrulesv3.HeaderMutationRules{AllowAllRouting: bools(true), AllowEnvoy: bools(true)},
			m:     &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":authority", "x"), setHeader("x-envoy-original", "n")}},
			want:  map[string][]string{":authority": {"x"}, "x-envoy-original": {"n"}},
		},
		{
			name:      "CONTINUE_AND_REPLACE may change :method",
			m:         &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":method", "POST")}},
			replacing: true,
			want:      map[string][]string{":method": {"POST"}},
		},
		{
			name:     "content-length skipped when being removed",
			m:        &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("content-length", "5")}},
			removeCL: true,
			want:     map[string][]string{"content-length": nil},
		},
		{
			name:     "disallow_system",
			rules:    &mutationrulesv3.HeaderMutationRules{DisallowSystem: bools(true)},
			m:        &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":path", "/x"), setHeader("x-b", "1")}},
			want:     map[string][]string{":path": {"/"}, "x-b": {"1"}},
			rejected: 1,
		},
		{
			name:     "disallow_all",
			rules:    &mutationrulesv3.HeaderMutationRules{DisallowAll: bools(true)},
			m:        &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-b", "1")}, RemoveHeaders: []string{"x-a"}},
			want:     map[string][]string{"x-b": nil, "x-a": {"1", "2"}},
			rejected: 2,
		},
		{
			name:     "expressions",
			rules:    &mutationrulesv3.HeaderMutationRules{AllowExpression: &matcherv3.RegexMatcher{Regex: "x-envoy-.*"}, DisallowExpression: &matcherv3.RegexMatcher{Regex: "x-secret.*"}},
			m:        &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-envoy-original", "n"), setHeader("x-secret-1", "s")}},
			want:     map[string][]string{"x-envoy-original": {"n"}, "x-secret-1": nil},
			rejected: 1,
		},
		{
			name:     "disallow_is_error",
			rules:    &mutationrulesv3.HeaderMutationRules{DisallowIsError: bools(true)},
			m:        &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":scheme", "tcp")}},
			wantErr:  true,
			rejected: 1,
		},
		{
			name:     "value and raw_value",
			m:        &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x", Value: "a", RawValue: []byte("a")}}}},
			wantErr:  true,
			rejected: 1,
		},
		{
			name:     "invalid status ignored",
			m:        &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":status", "abc")}},
			want:     map[string][]string{":status": nil},
			rejected: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checker, err := newMutationChecker(tc.rules)
			require.NoError(t, err)
			h := baseHeaders()
			rejected := 0
			err = applyHeaderMutation(tc.m, h, mutationParams{
				checker: checker, maxHeadersCount: 100, replacingMessage: tc.replacing, removeCL: tc.removeCL,
				rejected: func() { rejected++ },
			})
			assert.Equal(t, tc.rejected, rejected)
			if tc.wantErr {
				var me *mutationError
				assert.True(t, errors.As(err, &me))
				return
			}
			require.NoError(t, err)
			for k, want := range tc.want {
				var got []string
				for _, f := range h.fields {
					if f.key == k {
						got = append(got, f.value)
					}
				}
				assert.Equal(t, want, got, k)
			}
		})
	}
}

func TestHeaderMapSetKeepsPosition(t *testing.T) {
	h := baseHeaders()
	h.set("x-a", "z")
	require.Len(t, h.fields, 6)
	assert.Equal(t, headerField{key: "x-a", value: "z"}, h.fields[4])
	v, ok := h.getJoined("x-a")
	assert.True(t, ok)
	assert.Equal(t, "z", v)
}

func TestInvalidRuleRegexRejected(t *testing.T) {
	_, err := newMutationChecker(&mutationrulesv3.HeaderMutationRules{AllowExpression: &matcherv3.RegexMatcher{Regex: "("}})
	assert.Error(t, err)
}

// FuzzApplyHeaderMutation checks that arbitrary mutations never corrupt the
// map: keys stay lowercased, pseudo-headers survive, values stay valid.
func FuzzApplyHeaderMutation(f *testing.F) {
	f.Add("x-a", "v", "x-b", false)
	f.Add(":path", "/p", ":authority", true)
	f.Add("Host", "h", "host", false)
	f.Add("bad name", "v\n", "", true)
	f.Add("content-length", "12", "x-envoy-x", false)
	f.Fuzz(func(t *testing.T, key, value, remove string, appendValue bool) {
		checker, err := newMutationChecker(nil)
		require.NoError(t, err)
		h := baseHeaders()
		m := &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(key, value, appendValue)}, RemoveHeaders: []string{remove}}
		err = applyHeaderMutation(m, h, mutationParams{checker: checker, maxHeadersCount: 100, rejected: func() {}})
		if err != nil {
			var me *mutationError
			require.True(t, errors.As(err, &me))
		}
		for _, fld := range h.fields {
			assert.True(t, validHeaderName(fld.key), fld.key)
			assert.True(t, validHeaderValue(fld.value))
		}
		for _, p := range []string{":authority", ":path", ":method", ":scheme"} {
			assert.True(t, h.has(p), p)
		}
	})
}

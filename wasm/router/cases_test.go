package router_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/wasm/router"
)

// caseFile mirrors wasm/testdata/cases.json, shared with test/wasmhost which
// runs the same cases against the compiled module.
type caseFile struct {
	Configs    map[string]json.RawMessage `json:"configs"`
	Cases      []routeCase                `json:"cases"`
	BadConfigs []struct {
		Name   string          `json:"name"`
		Config json.RawMessage `json:"config"`
	} `json:"bad_configs"`
}

type routeCase struct {
	Name       string            `json:"name"`
	Config     string            `json:"config"`
	Headers    [][2]string       `json:"headers"`
	Properties map[string]string `json:"properties"`
	Want       struct {
		Outcome string            `json:"outcome"`
		Status  uint32            `json:"status"`
		Code    string            `json:"code"`
		Canary  bool              `json:"canary"`
		Headers map[string]string `json:"headers"`
	} `json:"want"`
}

func loadCases(t testing.TB) caseFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf caseFile
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	return cf
}

// rawConfig returns the plugin configuration bytes: a JSON string in the case
// file is used verbatim (to express invalid JSON), anything else as encoded.
func rawConfig(raw json.RawMessage) []byte {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	return raw
}

// applyDecision plays the filter's part natively: remove, then set or reply.
func applyDecision(headers [][2]string, d router.Decision) [][2]string {
	out := make([][2]string, 0, len(headers)+len(d.Set))
	for _, h := range headers {
		removed := false
		for _, r := range d.Remove {
			removed = removed || strings.EqualFold(r, h[0])
		}
		if !removed {
			out = append(out, h)
		}
	}
	if d.Reply != nil {
		return out
	}
	for _, s := range d.Set {
		out = append(out, [2]string{s.Name, s.Value})
	}
	return out
}

func TestSharedCases(t *testing.T) {
	cf := loadCases(t)
	routers := map[string]*router.Router{}
	for name, raw := range cf.Configs {
		r, err := router.ParseConfig(rawConfig(raw))
		if err != nil {
			t.Fatalf("config %s: %v", name, err)
		}
		routers[name] = r
	}
	for _, tc := range cf.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			r := routers[tc.Config]
			if r == nil {
				t.Fatalf("unknown config %q", tc.Config)
			}
			req := router.Request{RequestID: func() string { return tc.Properties["request.id"] }}
			req.Headers = tc.Headers
			d := r.Decide(req)
			if string(d.Outcome) != tc.Want.Outcome {
				t.Errorf("outcome = %q, want %q", d.Outcome, tc.Want.Outcome)
			}
			if d.Canary != tc.Want.Canary {
				t.Errorf("canary = %v, want %v", d.Canary, tc.Want.Canary)
			}
			final := applyDecision(req2pairs(tc.Headers), d)
			for _, h := range final {
				if strings.HasPrefix(strings.ToLower(h[0]), router.HeaderPrefix) {
					if want, ok := tc.Want.Headers[h[0]]; !ok || want != h[1] {
						t.Errorf("header %s: %q survives (want %q)", h[0], h[1], want)
					}
				}
			}
			if tc.Want.Status == 0 {
				if d.Reply != nil {
					t.Fatalf("unexpected local reply %d %s", d.Reply.Status, d.Reply.Body())
				}
				for k, v := range tc.Want.Headers {
					if got := lookup(final, k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				return
			}
			if d.Reply == nil {
				t.Fatalf("no local reply, want %d", tc.Want.Status)
			}
			if d.Reply.Status != tc.Want.Status {
				t.Errorf("status = %d, want %d", d.Reply.Status, tc.Want.Status)
			}
			var body struct {
				Error struct{ Message, Type, Code string } `json:"error"`
			}
			if err := json.Unmarshal(d.Reply.Body(), &body); err != nil {
				t.Fatalf("reply body %s: %v", d.Reply.Body(), err)
			}
			if body.Error.Code != tc.Want.Code || body.Error.Message == "" || body.Error.Type == "" {
				t.Errorf("reply body %+v, want code %q and non-empty message/type", body.Error, tc.Want.Code)
			}
		})
	}
}

func req2pairs(h [][2]string) [][2]string { return append([][2]string(nil), h...) }

func lookup(h [][2]string, name string) string {
	for _, p := range h {
		if p[0] == name {
			return p[1]
		}
	}
	return ""
}

func TestSharedBadConfigs(t *testing.T) {
	cf := loadCases(t)
	for _, bc := range cf.BadConfigs {
		t.Run(bc.Name, func(t *testing.T) {
			_, err := router.ParseConfig(rawConfig(bc.Config))
			if !errors.Is(err, router.ErrInvalidConfig) {
				t.Fatalf("ParseConfig error = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

package wasmhost_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/test/wasmhost"
)

// encodeHeaders/decodeHeaders turn a header list into fuzzable bytes:
// pairs separated by '\n', name and value by the first 0x00.
func encodeHeaders(h [][2]string) []byte {
	var b bytes.Buffer
	for i, p := range h {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p[0])
		b.WriteByte(0)
		b.WriteString(p[1])
	}
	return b.Bytes()
}

func decodeHeaders(b []byte) [][2]string {
	var out [][2]string
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		name, value, _ := bytes.Cut(line, []byte{0})
		out = append(out, [2]string{string(name), string(value)})
	}
	return out
}

var setHeaders = map[string]bool{"x-tollgate-tenant": true, "x-tollgate-tier": true, "x-tollgate-key-id": true, "x-tollgate-route": true}

// FuzzCompiledRequestHeaders feeds random header maps and plugin
// configurations to the compiled module: it never traps, never makes a
// restricted host call, and never lets a client-sent x-tollgate-* header
// through (on Continue only the router's own four remain, each once; with the
// reference configuration the tenant is one it knows).
func FuzzCompiledRequestHeaders(f *testing.F) {
	cf := loadCases(f)
	for _, tc := range cf.Cases {
		f.Add(rawConfig(cf.Configs[tc.Config]), encodeHeaders(tc.Headers))
	}
	f.Add([]byte(`{"anonymous":{"tenant":"t","tier":"x"},"tiers":{"x":{}}}`), []byte(":path\x00/v1/models\n\x00\nx-tollgate-tenant\x00evil"))
	f.Add([]byte(`{`), []byte("\n\n\n"))
	ctx := testContext(f)
	vm := newVM(f, newHost(f, wasmhost.Options{}))
	reference, ok, err := vm.Configure(ctx, rawConfig(cf.Configs["main"]))
	if err != nil || !ok {
		f.Fatalf("reference config: ok=%v err=%v", ok, err)
	}
	f.Fuzz(func(t *testing.T, config, headerBytes []byte) {
		p, ok, err := vm.Configure(ctx, config)
		if err != nil {
			t.Fatalf("configure trapped: %v", err)
		}
		fuzzedConfig := ok
		if !ok {
			if err := p.Close(ctx); err != nil {
				t.Fatalf("closing rejected root context: %v", err)
			}
			p = reference
		}
		headers := decodeHeaders(headerBytes)
		res, err := p.Do(ctx, wasmhost.Request{Headers: headers, Properties: map[string]string{"request.id": string(headerBytes)}})
		if err != nil {
			t.Fatalf("request trapped: %v", err)
		}
		if fuzzedConfig {
			if err := p.Close(ctx); err != nil {
				t.Fatalf("closing root context: %v", err)
			}
		}
		if v := vm.Violations(); len(v) > 0 {
			t.Fatalf("restricted host calls: %v", v)
		}
		switch res.Action {
		case wasmhost.Pause:
			if res.Reply == nil {
				t.Fatal("paused without a local reply")
			}
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal(res.Reply.Body, &body); err != nil || body.Error.Code == "" {
				t.Fatalf("reply body %q: %v", res.Reply.Body, err)
			}
		case wasmhost.Continue:
			if res.Reply != nil {
				t.Fatal("continued after a local reply")
			}
		default:
			t.Fatalf("action %d", res.Action)
		}
		seen := map[string]bool{}
		for _, h := range res.Headers {
			n := strings.ToLower(h[0])
			if !strings.HasPrefix(n, "x-tollgate-") {
				continue
			}
			if res.Action != wasmhost.Continue || !setHeaders[n] || seen[n] {
				t.Fatalf("client header %q=%q survived (action %d)", h[0], h[1], res.Action)
			}
			seen[n] = true
			if !fuzzedConfig && n == "x-tollgate-tenant" && h[1] != "acme" {
				t.Fatalf("tenant %q is not from the reference config", h[1])
			}
		}
		if res.Action == wasmhost.Continue && !seen["x-tollgate-tenant"] {
			t.Fatal("continued without x-tollgate-tenant")
		}
	})
}

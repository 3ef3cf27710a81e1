package config

import (
	"bytes"
	"errors"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tollgate-dev/tollgate/envoy"
)

// FuzzParse checks what users rely on when they edit tollgate.yaml:
//   - a rejected file gets Problems (errors.Is ErrInvalid), each naming the
//     file and a line inside it (0 when no line applies);
//   - the same bytes always give the same verdict and the same messages;
//   - an accepted config survives a round trip: marshalled back to YAML it
//     parses again, and marshals to the same YAML (defaults are idempotent
//     and every field the loader reads is one it writes).
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add(envoy.DefaultConfig)
	f.Add([]byte(minimal + "tenants:\n  keys:\n    - {id: a, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: t}\n" +
		"budgets:\n  tenants:\n    t: {daily_usd: 1.5, monthly_usd: 20}\n"))
	f.Add([]byte(minimal + "bogus: 1\n"))
	f.Add([]byte("listen:\n  max_body_bytes: lots\n" + minimal))
	f.Add([]byte("a: [1, 2\n"))
	f.Add([]byte(minimal + "listen: {shutdown_grace: 5s}\nfailure_mode: {cache: open}\n"))
	f.Add([]byte(minimal + "tenants:\n  allow_anonymous: false\n  keys: [{id: a, tenant: true}]\n"))
	f.Add([]byte("listen: {extproc: 'unix:', admin: ':99999'}\n" + minimal))
	f.Add([]byte("a: &a {b: *a}\n"))
	f.Add([]byte("cache: {max_temperature: 0, exact: {ttl: -1s}}\n" + minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		c, err := Parse(name, data)
		_, again := Parse(name, data)
		if (err == nil) != (again == nil) || (err != nil && err.Error() != again.Error()) {
			t.Fatalf("two parses of the same bytes disagree: %v / %v", err, again)
		}
		if err != nil {
			var ps Problems
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems: %#v", err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, p := range ps {
				if p.File != name || p.Line < 0 || p.Line > lines {
					t.Fatalf("problem %q: file %q line %d, want %q and a line in 0..%d", p.String(), p.File, p.Line, name, lines)
				}
			}
			return
		}
		if c.Source != name {
			t.Fatalf("Source = %q, want %q", c.Source, name)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal an accepted config: %v", err)
		}
		c2, err := Parse(name, out)
		if err != nil {
			t.Fatalf("an accepted config, marshalled back, is rejected: %v\n%s", err, out)
		}
		out2, err := yaml.Marshal(c2)
		if err != nil {
			t.Fatalf("marshal the reparsed config: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config:\nfirst:\n%s\nsecond:\n%s", out, out2)
		}
	})
}

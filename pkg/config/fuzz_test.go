package config

import "testing"

// FuzzParse: the loader reports problems, never panics, whatever the bytes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		minimal,
		minimal + "tenants:\n  allow_anonymous: false\n  keys: [{id: a, tenant: true}]\n",
		"listen: {extproc: 'unix:', admin: ':99999'}\n" + minimal,
		"a: &a {b: *a}\n",
		"cache: {max_temperature: 0, exact: {ttl: -1s}}\n" + minimal,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse("fuzz.yaml", data)
	})
}

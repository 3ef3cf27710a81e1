package keys

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzFile: any key file content either opens or fails with an error; it
// never panics, and what opens has every record under its own id.
func FuzzFile(f *testing.F) {
	f.Add([]byte(`{"id":"k1","tenant":"acme","sha256":"` + Hash("x") + `","created":"2026-01-01T00:00:00Z"}` + "\n"))
	f.Add([]byte(`{"id":"k1","tenant":"acme"}` + "\n" + `{"id":"k1","revoked":"2026-01-02T00:00:00Z"}` + "\n"))
	f.Add([]byte(`{"id":"half`))
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte(`{"id":"k","models":[1]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "keys.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := OpenFile(path, FileOptions{})
		if err != nil {
			return
		}
		defer b.Close()
		for id, k := range b.keys {
			if k.ID != id || id == "" {
				t.Fatalf("record %q stored under %q", k.ID, id)
			}
		}
	})
}

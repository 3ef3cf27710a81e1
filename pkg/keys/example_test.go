package keys_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tollgate-dev/tollgate/pkg/keys"
)

// A key is created with the hash of a fresh secret; the secret
// authenticates until the key is revoked.
func Example() {
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	backend, err := keys.OpenFile(filepath.Join(dir, "tollgate-ledger.keys.jsonl"), keys.FileOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ring, err := keys.NewRing(context.Background(), backend, keys.RingOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer ring.Close()

	secret, sum, _ := keys.NewSecret() // give secret to the client, keep sum
	_, err = ring.Create(context.Background(), keys.Key{ID: "ci-bot", Tenant: "acme", SHA256: sum, Models: []string{"gpt-4o-mini"}})
	fmt.Println(err)

	k, ok := ring.Lookup(sha256.Sum256([]byte(secret)))
	fmt.Println(ok, k.Tenant, k.AllowsModel("gpt-4o"))

	_, _ = ring.Revoke(context.Background(), "ci-bot")
	_, ok = ring.Lookup(sha256.Sum256([]byte(secret)))
	fmt.Println(ok)
	// Output:
	// <nil>
	// true acme false
	// false
}

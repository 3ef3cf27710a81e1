package router_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/wasm/router"
)

// TestKeyLookupComparesTheWholeHash configures key hashes that share their
// first 8 bytes with the hash of the presented key (the lookup's sort
// prefix) but differ further on: only the exact hash may authenticate, and
// it must map to its own tenant.
func TestKeyLookupComparesTheWholeHash(t *testing.T) {
	const key = "sk-prefix-collision"
	sum := sha256.Sum256([]byte(key))
	variant := func(i byte) string {
		s := sum
		s[31] ^= i
		return hex.EncodeToString(s[:])
	}
	cfg := func(keys []string) []byte {
		var b strings.Builder
		b.WriteString(`{"keys":[`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"sha256":%q,"key_id":"k%d","tenant":"t%d","tier":"x"}`, k, i, i)
		}
		b.WriteString(`],"tiers":{"x":{}}}`)
		return []byte(b.String())
	}
	req := router.Request{Headers: [][2]string{
		{":method", "POST"}, {":path", "/v1/chat/completions"}, {"authorization", "Bearer " + key},
	}}
	tenant := func(d router.Decision) string {
		for _, h := range d.Set {
			if h.Name == router.HeaderTenant {
				return h.Value
			}
		}
		return ""
	}

	// Same prefix, different hash only: rejected.
	r, err := router.ParseConfig(cfg([]string{variant(1), variant(2), variant(0x80)}))
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Decide(req); d.Outcome != router.OutcomeInvalidKey || d.Reply == nil || d.Reply.Status != 401 {
		t.Fatalf("a key whose hash only shares the prefix: outcome %s, reply %+v; want invalid_key 401", d.Outcome, d.Reply)
	}

	// The exact hash among same-prefix neighbours: accepted as its tenant.
	r, err = router.ParseConfig(cfg([]string{variant(1), variant(2), variant(0), variant(0x80)}))
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Decide(req); d.Outcome != router.OutcomeAllowed || tenant(d) != "t2" {
		t.Fatalf("the exact hash: outcome %s, tenant %q; want allowed as t2", d.Outcome, tenant(d))
	}
}

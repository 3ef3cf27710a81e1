package extproc

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/keys"
)

// identity is who a request is billed to.
type identity struct {
	Tenant string
	Tier   string
	KeyID  string
	// Virtual is the virtual key that authenticated the request (nil for
	// tenants.keys, anonymous and trusted-header identities): its alias
	// list, budget caps and rate limits apply on top of the tenant's.
	Virtual *keys.Key
}

// KeyLookup finds a virtual key by the SHA-256 of its secret, from memory.
// ok is false when there is none or (with k set) when it has expired.
// *keys.Ring implements it.
type KeyLookup interface {
	Lookup(sum [32]byte) (k *keys.Key, ok bool)
}

var _ KeyLookup = (*keys.Ring)(nil)

// tenants resolves API keys (by SHA-256) to identities: the keys of
// tenants.keys first, then virtual keys.
type tenants struct {
	byHash      map[[32]byte]identity
	ids         map[string]bool // tenants.keys ids: a virtual key with one of them is refused
	trustHeader bool
	anonymous   *identity
	virtual     KeyLookup // nil: virtual keys off
}

func newTenants(c config.Tenants) *tenants {
	t := &tenants{byHash: make(map[[32]byte]identity, len(c.Keys)), ids: make(map[string]bool, len(c.Keys)), trustHeader: c.TrustHeader}
	for _, k := range c.Keys {
		var h [32]byte
		b, _ := hex.DecodeString(k.SHA256) // validated at load
		copy(h[:], b)
		t.byHash[h] = identity{Tenant: k.Tenant, Tier: k.Tier, KeyID: k.ID}
		t.ids[k.ID] = true
	}
	if c.AllowAnonymous != "" {
		t.anonymous = &identity{Tenant: c.AllowAnonymous, Tier: c.AnonymousTier, KeyID: "anonymous"}
	}
	return t
}

// apiKey extracts the key from authorization: Bearer … or x-api-key.
func apiKey(h headerMap) string {
	if a := h.get("authorization"); a != "" {
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			return strings.TrimSpace(a[7:])
		}
		return ""
	}
	return strings.TrimSpace(h.get("x-api-key"))
}

// resolve returns the identity of a request or a 401 rejection.
func (t *tenants) resolve(h headerMap) (identity, *rejection) {
	if t.trustHeader {
		if tenant := h.get(contract.HeaderTenant); tenant != "" {
			return identity{Tenant: tenant, Tier: h.get(contract.HeaderTier), KeyID: h.get(contract.HeaderKeyID)}, nil
		}
	}
	key := apiKey(h)
	if key == "" {
		if t.anonymous != nil {
			return *t.anonymous, nil
		}
		return identity{}, reject(401, "invalid_request_error", "missing_api_key", "unauthenticated",
			"You didn't provide an API key. Provide it as 'Authorization: Bearer YOUR_KEY'.")
	}
	sum := keySum(key)
	if id, ok := t.byHash[sum]; ok {
		return id, nil
	}
	if t.virtual != nil {
		if k, ok := t.virtual.Lookup(sum); k != nil && !t.ids[k.ID] {
			if !ok {
				return identity{}, reject(401, "invalid_request_error", "invalid_api_key", "unauthenticated",
					"This API key has expired.")
			}
			return identity{Tenant: k.Tenant, Tier: k.Tier, KeyID: k.ID, Virtual: k}, nil
		}
	}
	return identity{}, reject(401, "invalid_request_error", "invalid_api_key", "unauthenticated",
		"Incorrect API key provided.")
}

// keySum is the SHA-256 of key, hashed from a stack buffer: a plain
// []byte(key) conversion allocates for keys longer than 32 bytes, which
// most are (a virtual key's secret is 47).
func keySum(key string) [32]byte {
	var buf [128]byte
	return sha256.Sum256(append(buf[:0], key...))
}

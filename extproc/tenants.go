package extproc

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
)

// identity is who a request is billed to.
type identity struct {
	Tenant string
	Tier   string
	KeyID  string
}

// tenants resolves API keys (by SHA-256) to identities.
type tenants struct {
	byHash      map[[32]byte]identity
	trustHeader bool
	anonymous   *identity
}

func newTenants(c config.Tenants) *tenants {
	t := &tenants{byHash: make(map[[32]byte]identity, len(c.Keys)), trustHeader: c.TrustHeader}
	for _, k := range c.Keys {
		var h [32]byte
		b, _ := hex.DecodeString(k.SHA256) // validated at load
		copy(h[:], b)
		t.byHash[h] = identity{Tenant: k.Tenant, Tier: k.Tier, KeyID: k.ID}
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
	sum := sha256.Sum256([]byte(key))
	if id, ok := t.byHash[sum]; ok {
		return id, nil
	}
	return identity{}, reject(401, "invalid_request_error", "invalid_api_key", "unauthenticated",
		"Incorrect API key provided.")
}

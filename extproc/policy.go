package extproc

import (
	"fmt"
	"hash/fnv"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/llm"
)

// modelPolicy enforces, on the model the body names, the decisions the wasm
// router takes from headers (tenants.tiers allow-lists, routing.canaries):
// the router sees only x-tollgate-model, which a client may leave out, so
// ext_proc is where they hold.
type modelPolicy struct {
	allowed  map[string]map[string]bool // tier -> allowed aliases (absent: any)
	canaries map[string]config.Canary   // alias -> its canary
}

func newModelPolicy(c *config.Config) *modelPolicy {
	p := &modelPolicy{allowed: map[string]map[string]bool{}, canaries: map[string]config.Canary{}}
	for name, t := range c.Tenants.Tiers {
		if len(t.AllowedModels) == 0 {
			continue
		}
		set := make(map[string]bool, len(t.AllowedModels))
		for _, a := range t.AllowedModels {
			set[a] = true
		}
		p.allowed[name] = set
	}
	for _, cn := range c.Routing.Canaries {
		p.canaries[cn.Alias] = cn
	}
	return p
}

// allow rejects an alias outside the tier's allow-list with the wasm
// router's 403 model_not_allowed.
func (p *modelPolicy) allow(tier, alias string) *rejection {
	set, ok := p.allowed[tier]
	if !ok || set[alias] {
		return nil
	}
	return reject(403, llm.TypeInvalidRequest, "model_not_allowed", "model_not_allowed",
		fmt.Sprintf("The model '%s' is not allowed for this API key's tier.", truncate(alias, 128)))
}

// route applies alias's canary split: the same bucket as the wasm router's
// (router.Bucket), keyed on the request id (hash_on request_id, falling
// back to the tenant) or the tenant.
func (p *modelPolicy) route(alias, requestID, tenant string) (string, bool) {
	cn, ok := p.canaries[alias]
	if !ok {
		return alias, false
	}
	key := tenant
	if cn.HashOn != "tenant" && requestID != "" {
		key = requestID
	}
	if canaryBucket(alias, key) < uint32(cn.Weight) {
		return cn.Canary, true
	}
	return alias, false
}

// canaryBucket is 32-bit FNV-1a of alias, a zero byte and key, mod 100.
func canaryBucket(alias, key string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(alias)) // a hash.Hash never fails to write
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	return h.Sum32() % 100
}

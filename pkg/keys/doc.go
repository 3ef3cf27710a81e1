// Package keys keeps virtual API keys: keys issued and revoked at runtime,
// each bound to a tenant, with an optional tier, expiry, alias allow-list,
// budget caps and rate limits of its own.
//
// A key is stored only as the SHA-256 of its secret; the secret is returned
// once, when the key is created or rotated. A Ring serves lookups from an
// in-memory snapshot (no I/O on the request path) and keeps that snapshot
// current from its backend: an append-only JSONL file (FileBackend) or
// Redis (RedisBackend). A change made through a Ring is visible in that
// Ring when the call returns; other Rings on the same backend see it within
// their refresh interval (Redis: at once by pub/sub, with a version poll as
// a backstop).
package keys

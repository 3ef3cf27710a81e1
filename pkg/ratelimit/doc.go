// Package ratelimit enforces requests-per-minute (RPM) and
// tokens-per-minute (TPM) limits keyed by (scope, id), e.g. ("tenant",
// "acme") and ("key", "ci-bot").
//
// # Window
//
// The limiter counts in fixed one-minute windows aligned to the Unix minute
// (the window of t is t.Unix()/60). A fixed window was chosen over a
// sliding one for three reasons:
//
//   - The reset is a point in time every replica computes the same way, so
//     Retry-After and x-ratelimit-reset-* tell a client exactly when it may
//     send again, the way OpenAI's headers do.
//   - The token correction after a response (actual minus estimate) lands in
//     exactly the window that was charged: with one counter per window there
//     is nothing to apportion and nothing is counted twice.
//   - One Redis hash per (subject, window) with two fields and an expiry is
//     the whole state: one round trip, one small Lua script, nothing to trim.
//
// The cost is the boundary burst: a client may spend a full limit in the last
// second of a window and another in the first second of the next, so the
// worst case over any 60 seconds is twice the limit. A sliding-window
// counter (two windows weighted by overlap) would bound that at the price of
// fuzzy reset times and a correction split across two windows; a sliding log
// would cost memory per request. For quota protection in front of a
// provider that itself limits per minute, the fixed window is what operators
// expect (Envoy's local and global rate limiters count the same way).
//
// # Tokens
//
// A request is admitted when, for every subject, requests+1 fits the RPM and
// tokens+estimate fits the TPM; then all counters move together, or none do
// (Take is atomic across subjects). After the response, [Limiter.Correct]
// adds actual-minus-estimate to the window the request was charged in; when
// that window has already ended the correction is dropped (the counters it
// would fix no longer decide anything).
//
// # Backends
//
// [NewMemory] keeps the counters in process (one replica). [NewRedis] keeps
// them in Redis, shared by every replica: a Lua script checks and increments
// all subjects of a request atomically and sets the keys to expire after the
// window. All keys of one request share the request's group as a hash tag
// ({tenant}), so the script also runs on Redis Cluster. Replicas agree on
// window boundaries through their clocks; keep them NTP-synced.
//
// Errors from a backend are returned as they are: the caller decides whether
// a request passes when the limiter cannot answer.
package ratelimit

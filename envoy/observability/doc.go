// Package observability renders Tollgate's Prometheus alert rules
// (alerts.yaml) for a config: the rules are the same for everyone, the
// recorded budget caps (tollgate:budget_cap_usd) are the config's tenants'.
// `tollgate render alerts --config FILE` prints them.
package observability

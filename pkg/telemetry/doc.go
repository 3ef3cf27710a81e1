// Package telemetry defines Tollgate's Prometheus metrics (one registry,
// injected) and the label policy that keeps their cardinality bounded: label
// values come from configuration, anything else is reported as "other".
package telemetry

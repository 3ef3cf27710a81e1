package extproc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/tollgate-dev/tollgate/pkg/audit"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/keys"
)

// adminToken is the SHA-256 of the configured admin token; ok is false when
// none is configured (the admin API is off).
func adminToken(a config.Admin, getenv func(string) string) (sum [32]byte, ok bool, err error) {
	switch {
	case a.TokenSHA256 != "":
		b, err := hex.DecodeString(a.TokenSHA256)
		if err != nil || len(b) != len(sum) {
			return sum, false, errors.New("admin.token_sha256 must be 64 hex characters")
		}
		copy(sum[:], b)
		return sum, true, nil
	case a.TokenEnv != "":
		tok := getenv(a.TokenEnv)
		if tok == "" {
			return sum, false, fmt.Errorf("admin.token_env names %s, which is empty: the admin API would have no token", a.TokenEnv)
		}
		return sha256.Sum256([]byte(tok)), true, nil
	}
	return sum, false, nil
}

// mountKeyAdmin adds the key admin API (keys.Admin) to mux when an admin
// token is configured; without one its paths stay unrouted (404), never
// open. New keys are checked against the running config (reloads apply):
// ids of tenants.keys are refused, the tenant must be in keys.tenants when
// that is set, the tier in tenants.tiers and each alias configured. Every
// change is an audit record (outcome keys.OutcomeCreated, ...).
func mountKeyAdmin(mux *http.ServeMux, cfg *config.Config, ring *keys.Ring, srv *Server, auditLog AuditLog, getenv func(string) string) error {
	sum, ok, err := adminToken(cfg.Admin, getenv)
	if err != nil || !ok {
		return err
	}
	if ring == nil {
		return errors.New("the admin API needs keys.enabled: true")
	}
	opts := keys.AdminOptions{
		TokenSHA256: sum,
		Check:       func(k keys.Key) error { return checkKey(srv.rt.Load().cfg, k) },
		Reserved:    func(id string) bool { return srv.rt.Load().tenants.ids[id] },
		Now:         srv.now,
		Logger:      srv.log,
	}
	if srv.budgets != nil {
		opts.Spent = func(ctx context.Context, k keys.Key) (float64, float64, error) {
			sp, err := srv.budgets.Spent(ctx, KeyAccount(k.ID))
			return sp.Daily.USD(), sp.Monthly.USD(), err
		}
	}
	if auditLog != nil {
		opts.Record = func(r *http.Request, k keys.Key, outcome string, status int) {
			err := auditLog.Append(audit.Record{Time: srv.now().UTC(), RequestID: r.Header.Get("x-request-id"),
				Tenant: k.Tenant, KeyID: k.ID, Outcome: outcome, Status: status})
			if err != nil {
				srv.metrics.Failures.WithLabelValues("audit", "open").Inc()
				srv.log.Error("audit append failed", "err", err)
			}
		}
	}
	keys.NewAdmin(ring, opts).Register(mux)
	return nil
}

// checkKey checks a new key against the running config.
func checkKey(cfg *config.Config, k keys.Key) error {
	var errs []error
	if ts := cfg.Keys.Tenants; len(ts) > 0 && !slices.Contains(ts, k.Tenant) {
		errs = append(errs, fmt.Errorf("tenant %q is not in keys.tenants", k.Tenant))
	}
	if k.Tier != "" {
		if _, ok := cfg.Tenants.Tiers[k.Tier]; !ok {
			errs = append(errs, fmt.Errorf("tier %q is not in tenants.tiers", k.Tier))
		}
	}
	for _, m := range k.Models {
		_, model := cfg.Models[m]
		_, virtual := cfg.Routing.Virtual[m]
		if !model && !virtual {
			errs = append(errs, fmt.Errorf("models: %q is not a configured alias", m))
		}
	}
	return errors.Join(errs...)
}

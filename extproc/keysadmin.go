package extproc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/audit"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/keys"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

// Audit outcomes of admin API changes.
const (
	OutcomeKeyCreated = "key_created"
	OutcomeKeyRotated = "key_rotated"
	OutcomeKeyRevoked = "key_revoked"
)

// KeyRing is what the admin API changes. *keys.Ring implements it.
type KeyRing interface {
	Create(ctx context.Context, k keys.Key) (keys.Key, error)
	Rotate(ctx context.Context, id, sha256 string) (keys.Key, error)
	Revoke(ctx context.Context, id string) (keys.Key, error)
	Get(id string) (keys.Key, bool)
	List() []keys.Key
}

var _ KeyRing = (*keys.Ring)(nil)

// keyAdmin serves /v1/admin/keys.
type keyAdmin struct {
	ring    KeyRing
	token   [32]byte // SHA-256 of the admin token
	srv     *Server  // the running config: tenants.keys ids, tiers, aliases
	audit   AuditLog // nil: no audit trail
	metrics *telemetry.Metrics
	log     *slog.Logger
	now     func() time.Time
}

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

// mountKeyAdmin adds the key admin API to mux when an admin token is
// configured; without one its paths stay unrouted (404), never open.
func mountKeyAdmin(mux *http.ServeMux, cfg *config.Config, ring KeyRing, srv *Server, auditLog AuditLog, getenv func(string) string) error {
	sum, ok, err := adminToken(cfg.Admin, getenv)
	if err != nil || !ok {
		return err
	}
	if ring == nil {
		return errors.New("the admin API needs keys.enabled: true")
	}
	a := &keyAdmin{ring: ring, token: sum, srv: srv, audit: auditLog, metrics: srv.metrics, log: srv.log, now: srv.now}
	mux.HandleFunc("POST /v1/admin/keys", a.auth(a.create))
	mux.HandleFunc("GET /v1/admin/keys", a.auth(a.list))
	mux.HandleFunc("GET /v1/admin/keys/{id}", a.auth(a.get))
	mux.HandleFunc("POST /v1/admin/keys/{id}/rotate", a.auth(a.rotate))
	mux.HandleFunc("DELETE /v1/admin/keys/{id}", a.auth(a.revoke))
	return nil
}

func (a *keyAdmin) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := apiKey(headerMap{"authorization": r.Header.Get("Authorization")})
		sum := sha256.Sum256([]byte(tok))
		if tok == "" || subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-admin"`)
			adminError(w, http.StatusUnauthorized, "invalid_admin_token", "A valid admin token is required: 'Authorization: Bearer TOKEN'.")
			return
		}
		h(w, r)
	}
}

// createKeyRequest is the body of POST /v1/admin/keys.
type createKeyRequest struct {
	ID         string   `json:"id"`
	Tenant     string   `json:"tenant"`
	Tier       string   `json:"tier"`
	ExpiresAt  string   `json:"expires_at"` // RFC 3339
	ExpiresIn  string   `json:"expires_in"` // Go duration, e.g. 720h
	Models     []string `json:"models"`
	DailyUSD   float64  `json:"daily_usd"`
	MonthlyUSD float64  `json:"monthly_usd"`
	RPM        int64    `json:"rpm"`
	TPM        int64    `json:"tpm"`
}

// keyView is a key as the API shows it: never the secret, nor its hash.
type keyView struct {
	ID         string     `json:"id"`
	Object     string     `json:"object"`
	Tenant     string     `json:"tenant"`
	Tier       string     `json:"tier,omitempty"`
	Status     string     `json:"status"` // active | expired | revoked
	Created    time.Time  `json:"created"`
	Rotated    *time.Time `json:"rotated,omitempty"`
	Expires    *time.Time `json:"expires,omitempty"`
	Revoked    *time.Time `json:"revoked,omitempty"`
	Models     []string   `json:"models,omitempty"`
	DailyUSD   float64    `json:"daily_usd,omitempty"`
	MonthlyUSD float64    `json:"monthly_usd,omitempty"`
	RPM        int64      `json:"rpm,omitempty"`
	TPM        int64      `json:"tpm,omitempty"`
	// Spent is the key's own settled spend (GET of one capped key only).
	Spent *keySpend `json:"spent,omitempty"`
}

// keySpend is a capped key's settled spend in the current UTC day and month.
type keySpend struct {
	DailyUSD   float64 `json:"daily_usd"`
	MonthlyUSD float64 `json:"monthly_usd"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (a *keyAdmin) view(k keys.Key) keyView {
	status := "active"
	switch {
	case !k.Revoked.IsZero():
		status = "revoked"
	case !k.Active(a.now()):
		status = "expired"
	}
	return keyView{ID: k.ID, Object: "tollgate.key", Tenant: k.Tenant, Tier: k.Tier, Status: status, Created: k.Created,
		Rotated: timePtr(k.Rotated), Expires: timePtr(k.Expires), Revoked: timePtr(k.Revoked), Models: k.Models,
		DailyUSD: k.DailyUSD, MonthlyUSD: k.MonthlyUSD, RPM: k.RPM, TPM: k.TPM}
}

// keySecret is the answer to create and rotate: the only time the secret
// is shown.
type keySecret struct {
	Key    keyView `json:"key"`
	Secret string  `json:"secret"`
}

func (a *keyAdmin) create(w http.ResponseWriter, r *http.Request) {
	var req createKeyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		adminError(w, http.StatusBadRequest, "invalid_request", "request body: "+err.Error())
		return
	}
	k, err := a.keyFrom(req)
	if err != nil {
		adminError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if a.srv.rt.Load().tenants.ids[k.ID] {
		adminError(w, http.StatusConflict, "key_id_conflict", fmt.Sprintf("key id %q is a key of tenants.keys in the config", k.ID))
		return
	}
	secret, sum, err := keys.NewSecret()
	if err != nil {
		adminError(w, http.StatusInternalServerError, "internal_error", err.Error())
		return
	}
	k.SHA256 = sum
	created, err := a.ring.Create(r.Context(), k)
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.record(r, created, OutcomeKeyCreated, http.StatusCreated)
	writeJSON(w, http.StatusCreated, keySecret{Key: a.view(created), Secret: secret})
}

// keyFrom checks a create request against the running config.
func (a *keyAdmin) keyFrom(req createKeyRequest) (keys.Key, error) {
	cfg := a.srv.rt.Load().cfg
	var errs []error
	k := keys.Key{ID: req.ID, Tenant: req.Tenant, Tier: req.Tier, Models: req.Models,
		DailyUSD: req.DailyUSD, MonthlyUSD: req.MonthlyUSD, RPM: req.RPM, TPM: req.TPM}
	if k.ID == "" {
		id, err := keys.NewID()
		if err != nil {
			return k, err
		}
		k.ID = id
	} else if !keys.ValidID(k.ID) {
		errs = append(errs, fmt.Errorf("id must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}, got %q", k.ID))
	}
	if k.Tenant == "" {
		errs = append(errs, errors.New("tenant is required"))
	} else if ts := cfg.Keys.Tenants; len(ts) > 0 && !slices.Contains(ts, k.Tenant) {
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
	switch {
	case req.ExpiresAt != "" && req.ExpiresIn != "":
		errs = append(errs, errors.New("set expires_at or expires_in, not both"))
	case req.ExpiresAt != "":
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			errs = append(errs, fmt.Errorf("expires_at must be RFC 3339 (2026-12-31T00:00:00Z): %v", err))
		}
		k.Expires = t.UTC()
	case req.ExpiresIn != "":
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("expires_in must be a positive duration (720h), got %q", req.ExpiresIn))
		}
		k.Expires = a.now().Add(d).UTC()
	}
	if !k.Expires.IsZero() && !k.Expires.After(a.now()) {
		errs = append(errs, errors.New("the key would expire before it is created"))
	}
	if k.DailyUSD < 0 || k.MonthlyUSD < 0 || k.RPM < 0 || k.TPM < 0 {
		errs = append(errs, errors.New("daily_usd, monthly_usd, rpm and tpm must not be negative"))
	}
	return k, errors.Join(errs...)
}

func (a *keyAdmin) list(w http.ResponseWriter, _ *http.Request) {
	all := a.ring.List()
	out := struct {
		Object string    `json:"object"`
		Data   []keyView `json:"data"`
	}{Object: "list", Data: make([]keyView, 0, len(all))}
	for _, k := range all {
		out.Data = append(out.Data, a.view(k))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *keyAdmin) get(w http.ResponseWriter, r *http.Request) {
	k, ok := a.ring.Get(r.PathValue("id"))
	if !ok {
		adminError(w, http.StatusNotFound, "key_not_found", fmt.Sprintf("no virtual key has id %q", r.PathValue("id")))
		return
	}
	v := a.view(k)
	if b := a.srv.budgets; b != nil && k.Capped() {
		sp, err := b.Spent(r.Context(), KeyAccount(k.ID))
		if err != nil {
			adminError(w, http.StatusServiceUnavailable, "budget_unavailable", "the spend ledger is unavailable: "+err.Error())
			return
		}
		v.Spent = &keySpend{DailyUSD: sp.Daily.USD(), MonthlyUSD: sp.Monthly.USD()}
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *keyAdmin) rotate(w http.ResponseWriter, r *http.Request) {
	secret, sum, err := keys.NewSecret()
	if err != nil {
		adminError(w, http.StatusInternalServerError, "internal_error", err.Error())
		return
	}
	k, err := a.ring.Rotate(r.Context(), r.PathValue("id"), sum)
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.record(r, k, OutcomeKeyRotated, http.StatusOK)
	writeJSON(w, http.StatusOK, keySecret{Key: a.view(k), Secret: secret})
}

func (a *keyAdmin) revoke(w http.ResponseWriter, r *http.Request) {
	k, err := a.ring.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.record(r, k, OutcomeKeyRevoked, http.StatusOK)
	writeJSON(w, http.StatusOK, a.view(k))
}

// record writes the change to the audit trail and the log: the key id and
// tenant, never the secret.
func (a *keyAdmin) record(r *http.Request, k keys.Key, outcome string, status int) {
	a.log.Info("virtual key changed", "change", outcome, "key_id", k.ID, "tenant", k.Tenant)
	if a.audit == nil {
		return
	}
	err := a.audit.Append(audit.Record{Time: a.now().UTC(), RequestID: r.Header.Get("x-request-id"),
		Tenant: k.Tenant, KeyID: k.ID, Outcome: outcome, Status: status})
	if err != nil {
		a.metrics.Failures.WithLabelValues("audit", "open").Inc()
		a.log.Error("audit append failed", "err", err)
	}
}

func (a *keyAdmin) storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, keys.ErrNotFound):
		adminError(w, http.StatusNotFound, "key_not_found", err.Error())
	case errors.Is(err, keys.ErrExists):
		adminError(w, http.StatusConflict, "key_id_conflict", err.Error())
	case errors.Is(err, keys.ErrRevoked):
		adminError(w, http.StatusConflict, "key_revoked", err.Error())
	case errors.Is(err, keys.ErrConflict):
		adminError(w, http.StatusConflict, "key_changed", err.Error()+"; retry")
	case errors.Is(err, keys.ErrInvalid):
		adminError(w, http.StatusBadRequest, "invalid_request", err.Error())
	default:
		a.log.Error("virtual key store failed", "err", err)
		adminError(w, http.StatusServiceUnavailable, "key_store_unavailable", "the key store is unavailable: "+err.Error())
	}
}

func adminError(w http.ResponseWriter, status int, code, msg string) {
	typ := "invalid_request_error"
	if status >= 500 {
		typ = "server_error"
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code, "param": nil}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

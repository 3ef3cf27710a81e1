package keys

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Outcomes of admin API changes, as audit records name them.
const (
	OutcomeCreated = "key_created"
	OutcomeRotated = "key_rotated"
	OutcomeRevoked = "key_revoked"
)

// AdminOptions configure NewAdmin.
type AdminOptions struct {
	// TokenSHA256 is the SHA-256 of the bearer token the API accepts.
	TokenSHA256 [32]byte
	// Check validates a key about to be created against the deployment
	// (its tenant, tier and aliases); an error is the client's 400. Nil:
	// no check beyond Key.Validate.
	Check func(k Key) error
	// Reserved reports ids owned by another key source (the config's keys):
	// creating one is refused with 409. Nil: none.
	Reserved func(id string) bool
	// Spent returns a capped key's settled spend in USD today and this
	// month, shown by GET /v1/admin/keys/{id}. Nil: not shown.
	Spent func(ctx context.Context, k Key) (daily, monthly float64, err error)
	// Record receives every change (for the audit trail): the key, never
	// its secret. Nil: not recorded.
	Record func(r *http.Request, k Key, outcome string, status int)
	// Now is the clock for expiries (default time.Now).
	Now func() time.Time
	// Logger logs changes (key id and tenant) and store failures.
	Logger *slog.Logger
}

// Admin is the HTTP API that creates, lists, rotates and revokes keys:
//
//	POST   /v1/admin/keys              create; the answer holds the secret, once
//	GET    /v1/admin/keys              list (never secrets nor hashes)
//	GET    /v1/admin/keys/{id}         one key
//	POST   /v1/admin/keys/{id}/rotate  new secret; the old one stops at once
//	DELETE /v1/admin/keys/{id}         revoke at once
//
// Every route needs Authorization: Bearer <token>; errors are OpenAI-shaped
// JSON.
type Admin struct {
	ring *Ring
	opts AdminOptions
}

// NewAdmin returns the API over ring.
func NewAdmin(ring *Ring, opts AdminOptions) *Admin {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Admin{ring: ring, opts: opts}
}

// Register adds the API's routes to mux.
func (a *Admin) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/admin/keys", a.auth(a.create))
	mux.HandleFunc("GET /v1/admin/keys", a.auth(a.list))
	mux.HandleFunc("GET /v1/admin/keys/{id}", a.auth(a.get))
	mux.HandleFunc("POST /v1/admin/keys/{id}/rotate", a.auth(a.rotate))
	mux.HandleFunc("DELETE /v1/admin/keys/{id}", a.auth(a.revoke))
}

func (a *Admin) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.opts.TokenSHA256[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-admin"`)
			apiError(w, http.StatusUnauthorized, "invalid_admin_token", "A valid admin token is required: 'Authorization: Bearer TOKEN'.")
			return
		}
		h(w, r)
	}
}

func bearer(h string) (string, bool) {
	if len(h) <= 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	return tok, tok != ""
}

// CreateRequest is the body of POST /v1/admin/keys.
type CreateRequest struct {
	ID         string   `json:"id,omitempty"` // default: NewID
	Tenant     string   `json:"tenant"`
	Tier       string   `json:"tier,omitempty"`
	ExpiresAt  string   `json:"expires_at,omitempty"` // RFC 3339
	ExpiresIn  string   `json:"expires_in,omitempty"` // Go duration, e.g. 720h
	Models     []string `json:"models,omitempty"`
	DailyUSD   float64  `json:"daily_usd,omitempty"`
	MonthlyUSD float64  `json:"monthly_usd,omitempty"`
	RPM        int64    `json:"rpm,omitempty"`
	TPM        int64    `json:"tpm,omitempty"`
}

// View is a key as the API shows it: never its secret, nor its hash.
type View struct {
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
	// Spent is a capped key's own settled spend (GET of one key only).
	Spent *Spend `json:"spent,omitempty"`
}

// Spend is a key's settled spend in the current UTC day and month.
type Spend struct {
	DailyUSD   float64 `json:"daily_usd"`
	MonthlyUSD float64 `json:"monthly_usd"`
}

// Issued is the answer to create and rotate: the only time the secret is
// shown.
type Issued struct {
	Key    View   `json:"key"`
	Secret string `json:"secret"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (a *Admin) view(k Key) View {
	status := "active"
	switch {
	case !k.Revoked.IsZero():
		status = "revoked"
	case !k.Active(a.opts.Now()):
		status = "expired"
	}
	return View{ID: k.ID, Object: "tollgate.key", Tenant: k.Tenant, Tier: k.Tier, Status: status, Created: k.Created,
		Rotated: timePtr(k.Rotated), Expires: timePtr(k.Expires), Revoked: timePtr(k.Revoked), Models: k.Models,
		DailyUSD: k.DailyUSD, MonthlyUSD: k.MonthlyUSD, RPM: k.RPM, TPM: k.TPM}
}

func (a *Admin) create(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", "request body: "+err.Error())
		return
	}
	k, err := a.keyFrom(req)
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if a.opts.Reserved != nil && a.opts.Reserved(k.ID) {
		apiError(w, http.StatusConflict, "key_id_conflict", fmt.Sprintf("key id %q belongs to a key of the config (tenants.keys)", k.ID))
		return
	}
	secret, sum, err := NewSecret()
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal_error", err.Error())
		return
	}
	k.SHA256 = sum
	created, err := a.ring.Create(r.Context(), k)
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.record(r, created, OutcomeCreated, http.StatusCreated)
	writeJSON(w, http.StatusCreated, Issued{Key: a.view(created), Secret: secret})
}

// keyFrom builds the key a create request asks for and reports every
// problem with it.
func (a *Admin) keyFrom(req CreateRequest) (Key, error) {
	now := a.opts.Now()
	var errs []error
	k := Key{ID: req.ID, Tenant: req.Tenant, Tier: req.Tier, Models: req.Models,
		DailyUSD: req.DailyUSD, MonthlyUSD: req.MonthlyUSD, RPM: req.RPM, TPM: req.TPM}
	if k.ID == "" {
		id, err := NewID()
		if err != nil {
			return k, err
		}
		k.ID = id
	} else if !ValidID(k.ID) {
		errs = append(errs, fmt.Errorf("id must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}, got %q", k.ID))
	}
	if k.Tenant == "" {
		errs = append(errs, errors.New("tenant is required"))
	} else if !validTenant(k.Tenant) {
		errs = append(errs, fmt.Errorf("tenant must match [A-Za-z0-9][A-Za-z0-9._:-]*, got %q", k.Tenant))
	}
	switch {
	case req.ExpiresAt != "" && req.ExpiresIn != "":
		errs = append(errs, errors.New("set expires_at or expires_in, not both"))
	case req.ExpiresAt != "":
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			errs = append(errs, fmt.Errorf("expires_at must be RFC 3339 (2026-12-31T00:00:00Z): %w", err))
		}
		k.Expires = t.UTC()
	case req.ExpiresIn != "":
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("expires_in must be a positive duration (720h), got %q", req.ExpiresIn))
		}
		k.Expires = now.Add(d).UTC()
	}
	if !k.Expires.IsZero() && !k.Expires.After(now) {
		errs = append(errs, errors.New("the key would expire before it is created"))
	}
	if k.DailyUSD < 0 || k.MonthlyUSD < 0 || k.RPM < 0 || k.TPM < 0 {
		errs = append(errs, errors.New("daily_usd, monthly_usd, rpm and tpm must not be negative"))
	}
	if a.opts.Check != nil {
		if err := a.opts.Check(k); err != nil {
			errs = append(errs, err)
		}
	}
	return k, errors.Join(errs...)
}

func (a *Admin) list(w http.ResponseWriter, _ *http.Request) {
	all := a.ring.List()
	out := struct {
		Object string `json:"object"`
		Data   []View `json:"data"`
	}{Object: "list", Data: make([]View, 0, len(all))}
	for _, k := range all {
		out.Data = append(out.Data, a.view(k))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Admin) get(w http.ResponseWriter, r *http.Request) {
	k, ok := a.ring.Get(r.PathValue("id"))
	if !ok {
		apiError(w, http.StatusNotFound, "key_not_found", fmt.Sprintf("no virtual key has id %q", r.PathValue("id")))
		return
	}
	v := a.view(k)
	if a.opts.Spent != nil && k.Capped() {
		daily, monthly, err := a.opts.Spent(r.Context(), k)
		if err != nil {
			apiError(w, http.StatusServiceUnavailable, "budget_unavailable", "the spend ledger is unavailable: "+err.Error())
			return
		}
		v.Spent = &Spend{DailyUSD: daily, MonthlyUSD: monthly}
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *Admin) rotate(w http.ResponseWriter, r *http.Request) {
	secret, sum, err := NewSecret()
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal_error", err.Error())
		return
	}
	k, err := a.ring.Rotate(r.Context(), r.PathValue("id"), sum)
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.record(r, k, OutcomeRotated, http.StatusOK)
	writeJSON(w, http.StatusOK, Issued{Key: a.view(k), Secret: secret})
}

func (a *Admin) revoke(w http.ResponseWriter, r *http.Request) {
	k, err := a.ring.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		a.storeError(w, err)
		return
	}
	a.record(r, k, OutcomeRevoked, http.StatusOK)
	writeJSON(w, http.StatusOK, a.view(k))
}

// record logs the change (key id and tenant, never the secret) and hands
// it to Record.
func (a *Admin) record(r *http.Request, k Key, outcome string, status int) {
	a.opts.Logger.Info("virtual key changed", "change", outcome, "key_id", k.ID, "tenant", k.Tenant)
	if a.opts.Record != nil {
		a.opts.Record(r, k, outcome, status)
	}
}

func (a *Admin) storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		apiError(w, http.StatusNotFound, "key_not_found", err.Error())
	case errors.Is(err, ErrExists):
		apiError(w, http.StatusConflict, "key_id_conflict", err.Error())
	case errors.Is(err, ErrRevoked):
		apiError(w, http.StatusConflict, "key_revoked", err.Error())
	case errors.Is(err, ErrConflict):
		apiError(w, http.StatusConflict, "key_changed", err.Error()+"; retry")
	case errors.Is(err, ErrInvalid):
		apiError(w, http.StatusBadRequest, "invalid_request", err.Error())
	default:
		a.opts.Logger.Error("virtual key store failed", "err", err)
		apiError(w, http.StatusServiceUnavailable, "key_store_unavailable", "the key store is unavailable: "+err.Error())
	}
}

// apiError writes an OpenAI-shaped error.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	typ := "invalid_request_error"
	if status >= 500 {
		typ = "server_error"
	}
	type body struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	}
	writeJSON(w, status, struct {
		Error body `json:"error"`
	}{body{Message: msg, Type: typ, Code: code}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

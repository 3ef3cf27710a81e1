package extproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/keys"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

// KeyAccount is the spend ledger account of virtual key id. A tenant id
// starts with a letter or digit, so "@key:" accounts never collide with one.
func KeyAccount(id string) string { return "@key:" + id }

// openKeys opens the virtual key ring in the spend ledger's backend: the key
// file beside the ledger file, or the ledger's Redis under
// <prefix>vkeys:. It returns nil when keys.enabled is false. Lookups are
// served from memory; a failed background refresh keeps the last keys,
// counted as tollgate_failures_total{layer="keys",mode="open"} and logged.
// closeKeys stops the ring and closes its connections.
func openKeys(ctx context.Context, cfg *config.Config, metrics *telemetry.Metrics, log *slog.Logger) (ring *keys.Ring, closeKeys func() error, err error) {
	if !cfg.Keys.Enabled {
		return nil, func() error { return nil }, nil
	}
	var b keys.Backend
	closeClient := func() error { return nil }
	switch cfg.Budgets.Ledger.Backend {
	case "redis":
		rc := cfg.Budgets.Ledger.Redis
		// Off the request path (lookups read memory): default timeouts,
		// and a pub/sub connection that must not time out between messages.
		client := redis.NewClient(&redis.Options{Addr: rc.Addr, Password: envOrEmpty(rc.PasswordEnv), DB: rc.DB})
		b, closeClient = keys.NewRedis(client, keys.RedisOptions{Prefix: rc.Prefix + "vkeys:"}), client.Close
	default:
		fb, err := keys.OpenFile(cfg.Keys.Path, keys.FileOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("keys: %w", err)
		}
		b = fb
	}
	var lastLog atomic.Int64 // unix seconds of the last error logged
	ring, err = keys.NewRing(ctx, b, keys.RingOptions{
		// A Redis outage at start must not keep the server down: tenants.keys
		// still work, virtual keys get 401 until the first load succeeds.
		StartEmpty: cfg.Budgets.Ledger.Backend == "redis",
		OnError: func(err error) {
			metrics.Failures.WithLabelValues("keys", string(config.Open)).Inc()
			if now := time.Now().Unix(); now-lastLog.Load() >= 10 {
				lastLog.Store(now)
				log.Error("virtual keys refresh failed; serving the keys loaded last (logged at most every 10s)", "err", err)
			}
		},
	})
	if err != nil {
		_ = b.Close()
		_ = closeClient()
		return nil, nil, fmt.Errorf("keys: %w", err)
	}
	return ring, func() error { return errors.Join(ring.Close(), closeClient()) }, nil
}

// allowModel applies the tier's alias allow-list, then the virtual key's.
func (d *downstream) allowModel(alias string) *rejection {
	if rej := d.rt.policy.allow(d.id.Tier, alias); rej != nil {
		return rej
	}
	if k := d.id.Virtual; k != nil && !k.AllowsModel(alias) {
		return reject(403, llm.TypeInvalidRequest, "model_not_allowed", "model_not_allowed",
			fmt.Sprintf("The model '%s' is not allowed for this API key.", truncate(alias, 128)))
	}
	return nil
}

// budgetCapped reports whether the request's tenant or virtual key has a
// budget cap (nothing to reserve otherwise).
func (d *downstream) budgetCapped() bool {
	caps := d.s.budgets.CapsFor(d.id.Tenant)
	return caps.Daily != 0 || caps.Monthly != 0 || (d.id.Virtual != nil && d.id.Virtual.Capped())
}

// keyAccount is the ledger account of the request's virtual key when it has
// caps of its own ("" otherwise): spend charged to the tenant is charged to
// it too.
func (d *downstream) keyAccount() string {
	if k := d.id.Virtual; k != nil && k.Capped() {
		return KeyAccount(k.ID)
	}
	return ""
}

// keyBudgets holds a virtual key's budget with its tenant's.
// *meter.Budgets implements it.
type keyBudgets interface {
	ReserveWith(ctx context.Context, tenant string, amount meter.Money, id string, extra ...meter.Account) (*meter.Reservation, error)
}

var _ keyBudgets = (*meter.Budgets)(nil)

// errNoKeyBudgets: the configured Budgets cannot hold a key's caps.
var errNoKeyBudgets = errors.New("the spend ledger cannot hold a virtual key's budget")

// reserveBudget holds amount against the tenant and, when the virtual key
// has caps of its own, against the key's account (KeyAccount) too: the
// request must fit both; settling the hold settles both.
func (d *downstream) reserveBudget(ctx context.Context, amount meter.Money, id string) (*meter.Reservation, error) {
	k := d.id.Virtual
	if k == nil || !k.Capped() {
		return d.s.budgets.Reserve(ctx, d.id.Tenant, amount, id)
	}
	kb, ok := d.s.budgets.(keyBudgets)
	if !ok {
		return nil, errNoKeyBudgets
	}
	return kb.ReserveWith(ctx, d.id.Tenant, amount, id, meter.Account{ID: KeyAccount(k.ID),
		Caps: meter.Caps{Daily: meter.MoneyFromUSD(k.DailyUSD), Monthly: meter.MoneyFromUSD(k.MonthlyUSD)}})
}

// keyRateLimit is the request's key's rate limit: a virtual key's own, or
// limits.keys for its id.
func (d *downstream) keyRateLimit() (config.RateLimit, bool) {
	if d.id.KeyID == "" {
		return config.RateLimit{}, false
	}
	if k := d.id.Virtual; k != nil && (k.RPM > 0 || k.TPM > 0) {
		return config.RateLimit{RPM: k.RPM, TPM: k.TPM}, true
	}
	kl, ok := d.rt.cfg.Limits.Keys[d.id.KeyID]
	return kl, ok
}

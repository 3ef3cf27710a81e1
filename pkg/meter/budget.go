package meter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBudgetExceeded is matched (errors.Is) by the error Reserve returns when a
// reservation would take a tenant over a cap. The concrete type is
// *ExceededError.
var ErrBudgetExceeded = errors.New("budget exceeded")

// Other budget errors.
var (
	ErrInvalidAmount        = errors.New("invalid amount")
	ErrInvalidReservation   = errors.New("invalid reservation")
	ErrDuplicateReservation = errors.New("reservation id already open")
	ErrClosed               = errors.New("ledger closed")
)

// Window names, as used in ExceededError and metrics labels.
const (
	WindowDaily   = "daily"
	WindowMonthly = "monthly"
)

// ExceededError says which window and cap a reservation would have exceeded.
type ExceededError struct {
	Tenant      string
	Window      string // WindowDaily or WindowMonthly
	WindowKey   string // "2026-11-27" or "2026-11"
	Cap         Money
	Spent       Money // settled spend in the window
	Outstanding Money // held by open reservations
	Requested   Money
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("%s: tenant %q %s cap %s USD (window %s): spent %s + reserved %s + requested %s",
		ErrBudgetExceeded, e.Tenant, e.Window, e.Cap, e.WindowKey, e.Spent, e.Outstanding, e.Requested)
}

// Is makes errors.Is(err, ErrBudgetExceeded) true.
func (e *ExceededError) Is(target error) bool { return target == ErrBudgetExceeded }

// Caps are a tenant's spend limits per UTC day and UTC calendar month. A zero
// cap means unlimited.
type Caps struct {
	Daily   Money
	Monthly Money
}

// Spend is a tenant's settled spend in the current windows.
type Spend struct {
	Daily   Money
	Monthly Money
}

// Windows identifies the UTC day and month a reservation counts in.
type Windows struct {
	Day   string // "2006-01-02"
	Month string // "2006-01"
}

// WindowsAt returns the UTC windows containing t.
func WindowsAt(t time.Time) Windows {
	t = t.UTC()
	return Windows{Day: t.Format(time.DateOnly), Month: t.Format("2006-01")}
}

// ReserveRequest is what Budgets asks a Store to hold.
type ReserveRequest struct {
	Tenant  string
	ID      string
	Windows Windows
	Amount  Money
	Caps    Caps
	At      time.Time
}

// SettleRequest replaces an open reservation by its actual cost.
type SettleRequest struct {
	Tenant  string
	ID      string
	Windows Windows
	Actual  Money
	At      time.Time
}

// Store keeps spend and open reservations per tenant and window. Reserve must
// check spent+outstanding+amount <= cap for both non-zero caps and hold the
// amount atomically, returning an *ExceededError otherwise, or
// ErrDuplicateReservation when (tenant, id) is already open. Settle must be a
// no-op for a reservation that is not open (already settled, or unknown).
// FileLedger and RedisLedger implement it.
type Store interface {
	Reserve(ctx context.Context, r ReserveRequest) error
	Settle(ctx context.Context, r SettleRequest) error
	Spent(ctx context.Context, tenant string, w Windows) (Spend, error)
	Close() error
}

// Budgets enforces per-tenant caps on top of a Store. It is safe for
// concurrent use.
type Budgets struct {
	store Store
	now   func() time.Time
	caps  atomic.Pointer[capSet]
	// defaultCaps is the WithDefaultCaps option, applied by NewBudgets.
	defaultCaps Caps
}

// capSet is the caps in force: per tenant, and for every other tenant.
type capSet struct {
	tenants map[string]Caps
	def     Caps
}

// BudgetsOption configures NewBudgets.
type BudgetsOption func(*Budgets)

// WithClock sets the clock that picks the day and month windows (default
// time.Now).
func WithClock(now func() time.Time) BudgetsOption {
	return func(b *Budgets) { b.now = now }
}

// WithDefaultCaps sets the caps of tenants absent from the caps map (default:
// unlimited).
func WithDefaultCaps(c Caps) BudgetsOption {
	return func(b *Budgets) { b.defaultCaps = c }
}

// NewBudgets returns Budgets over store with per-tenant caps. Spend is recorded
// for every tenant, capped or not.
func NewBudgets(store Store, caps map[string]Caps, opts ...BudgetsOption) *Budgets {
	b := &Budgets{store: store, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	b.SetAllCaps(caps, b.defaultCaps)
	return b
}

// SetCaps replaces the per-tenant caps (on config reload), keeping the
// default caps. Open reservations keep their holds; the new caps apply from
// the next Reserve.
func (b *Budgets) SetCaps(caps map[string]Caps) {
	b.SetAllCaps(caps, b.caps.Load().def)
}

// SetAllCaps replaces the per-tenant caps and the default caps of every
// other tenant at once (config reload of budgets.tenants and
// budgets.default).
func (b *Budgets) SetAllCaps(caps map[string]Caps, def Caps) {
	c := make(map[string]Caps, len(caps))
	for k, v := range caps {
		c[k] = v
	}
	b.caps.Store(&capSet{tenants: c, def: def})
}

// CapsFor returns the caps that apply to tenant.
func (b *Budgets) CapsFor(tenant string) Caps {
	cs := b.caps.Load()
	if c, ok := cs.tenants[tenant]; ok {
		return c
	}
	return cs.def
}

// Reserve holds amount against tenant's budget under the reservation id (unique
// per tenant while open, e.g. the request id). It fails with an error matching
// ErrBudgetExceeded, an *ExceededError naming the window and cap, when
// spent + outstanding + amount would exceed the daily or the monthly cap. Store
// errors (for example Redis unreachable) are returned wrapped; the caller
// decides whether to fail open or closed.
func (b *Budgets) Reserve(ctx context.Context, tenant string, amount Money, id string) (*Reservation, error) {
	return b.reserve(ctx, tenant, amount, id, b.CapsFor(tenant))
}

// Account is a ledger account with caps of its own, held alongside a
// tenant by ReserveWith: for example an API key's budget, under a derived
// id ("@key:<id>") that cannot be a tenant's.
type Account struct {
	ID   string
	Caps Caps
}

// ReserveWith holds amount against tenant's budget and against each extra
// account under its own caps, all or none: when one is refused the holds
// taken so far are released and the refusal is returned (its
// ExceededError names the account in Tenant). Settling or releasing the
// returned Reservation settles or releases every hold with the same amount.
func (b *Budgets) ReserveWith(ctx context.Context, tenant string, amount Money, id string, extra ...Account) (*Reservation, error) {
	linked := make([]*Reservation, 0, len(extra))
	for _, a := range extra {
		r, err := b.reserve(ctx, a.ID, amount, id, a.Caps)
		if err != nil {
			for _, l := range linked {
				_ = l.Release(ctx) // best effort; an unsettled hold expires (Redis) or is released at open (file)
			}
			return nil, err
		}
		linked = append(linked, r)
	}
	r, err := b.reserve(ctx, tenant, amount, id, b.CapsFor(tenant))
	if err != nil {
		for _, l := range linked {
			_ = l.Release(ctx)
		}
		return nil, err
	}
	r.linked = linked
	return r, nil
}

// Charge records amount as tenant's spend under id, without checking the
// caps: money a provider bills for work Tollgate could not refuse in
// advance, such as an attempt Envoy cut by its per-try timeout after the
// provider had received it. The spend counts against later reservations.
func (b *Budgets) Charge(ctx context.Context, tenant string, amount Money, id string) error {
	r, err := b.reserve(ctx, tenant, amount, id, Caps{})
	if err != nil {
		return err
	}
	return r.Settle(ctx, amount)
}

func (b *Budgets) reserve(ctx context.Context, tenant string, amount Money, id string, caps Caps) (*Reservation, error) {
	if amount < 0 {
		return nil, fmt.Errorf("reserve %s: %w: negative amount %s", id, ErrInvalidAmount, amount)
	}
	if !validIdentifier(tenant) || !validIdentifier(id) {
		return nil, fmt.Errorf("reserve: %w: tenant and id must be non-empty UTF-8", ErrInvalidReservation)
	}
	now := b.now()
	req := ReserveRequest{
		Tenant:  tenant,
		ID:      id,
		Windows: WindowsAt(now),
		Amount:  amount,
		Caps:    caps,
		At:      now,
	}
	if err := b.store.Reserve(ctx, req); err != nil {
		return nil, fmt.Errorf("reserve %s for tenant %q: %w", id, tenant, err)
	}
	return &Reservation{budgets: b, tenant: tenant, id: id, windows: req.Windows, amount: amount}, nil
}

// Spent returns tenant's settled spend in the current UTC day and month.
// Holds are not spend: reservations left open by a crashed process are
// released (file ledger, at open) or expire (Redis ledger, after its HoldTTL).
func (b *Budgets) Spent(ctx context.Context, tenant string) (Spend, error) {
	s, err := b.store.Spent(ctx, tenant, WindowsAt(b.now()))
	if err != nil {
		return Spend{}, fmt.Errorf("spent for tenant %q: %w", tenant, err)
	}
	return s, nil
}

// Close closes the store, flushing a file ledger.
func (b *Budgets) Close() error { return b.store.Close() }

// Reservation is an amount held against a tenant's budget until it is settled.
// It always settles into the windows it was reserved in, even when Settle runs
// after midnight UTC: a request is charged to the day (and month) it started.
type Reservation struct {
	budgets *Budgets
	tenant  string
	id      string
	windows Windows
	amount  Money
	linked  []*Reservation // ReserveWith's other accounts, settled with this one

	mu      sync.Mutex
	settled bool
}

// ID returns the reservation id.
func (r *Reservation) ID() string { return r.id }

// Amount returns the amount held.
func (r *Reservation) Amount() Money { return r.amount }

// Windows returns the windows the reservation counts in.
func (r *Reservation) Windows() Windows { return r.windows }

// Settle replaces the held amount by the actual cost: spent += actual,
// outstanding -= reserved. actual may exceed the reservation (the provider
// reported more than estimated); it is recorded in full. Only the first
// successful call has an effect; later calls return nil. After a store error
// the call may be retried.
func (r *Reservation) Settle(ctx context.Context, actual Money) error {
	if actual < 0 {
		return fmt.Errorf("settle %s: %w: negative amount %s", r.id, ErrInvalidAmount, actual)
	}
	for _, l := range r.linked {
		if err := l.Settle(ctx, actual); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.settled {
		return nil
	}
	err := r.budgets.store.Settle(ctx, SettleRequest{
		Tenant:  r.tenant,
		ID:      r.id,
		Windows: r.windows,
		Actual:  actual,
		At:      r.budgets.now(),
	})
	if err != nil {
		return fmt.Errorf("settle %s for tenant %q: %w", r.id, r.tenant, err)
	}
	r.settled = true
	return nil
}

// Release settles with zero cost: the request failed before the provider
// charged anything.
func (r *Reservation) Release(ctx context.Context) error { return r.Settle(ctx, 0) }

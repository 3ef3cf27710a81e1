package meter

// totals is the in-memory spend state of a FileLedger: settled and held
// amounts per tenant and window, and the open reservations. Not safe for
// concurrent use; the ledger's mutex guards it.
type totals struct {
	windows map[windowID]*windowTotals
	open    map[openID]openReservation
}

type windowID struct {
	tenant string
	kind   byte   // 'd' or 'm'
	key    string // "2026-11-27" or "2026-11"
}

type openID struct{ tenant, id string }

type windowTotals struct{ spent, held Money }

type openReservation struct {
	windows Windows
	amount  Money
}

func newTotals() *totals {
	return &totals{windows: make(map[windowID]*windowTotals), open: make(map[openID]openReservation)}
}

func dayID(tenant, day string) windowID     { return windowID{tenant, 'd', day} }
func monthID(tenant, month string) windowID { return windowID{tenant, 'm', month} }

func (t *totals) window(id windowID) *windowTotals {
	w := t.windows[id]
	if w == nil {
		w = &windowTotals{}
		t.windows[id] = w
	}
	return w
}

func (t *totals) peek(id windowID) windowTotals {
	if w := t.windows[id]; w != nil {
		return *w
	}
	return windowTotals{}
}

// check returns nil when r fits both caps, an *ExceededError otherwise, or
// ErrDuplicateReservation.
func (t *totals) check(r ReserveRequest) error {
	if _, ok := t.open[openID{r.Tenant, r.ID}]; ok {
		return ErrDuplicateReservation
	}
	for _, c := range []struct {
		name, key string
		id        windowID
		limit     Money
	}{
		{WindowDaily, r.Windows.Day, dayID(r.Tenant, r.Windows.Day), r.Caps.Daily},
		{WindowMonthly, r.Windows.Month, monthID(r.Tenant, r.Windows.Month), r.Caps.Monthly},
	} {
		if c.limit <= 0 {
			continue
		}
		w := t.peek(c.id)
		if addSat(addSat(w.spent, w.held), r.Amount) > c.limit {
			return &ExceededError{
				Tenant: r.Tenant, Window: c.name, WindowKey: c.key, Cap: c.limit,
				Spent: w.spent, Outstanding: w.held, Requested: r.Amount,
			}
		}
	}
	return nil
}

func (t *totals) reserve(tenant, id string, w Windows, amount Money) {
	t.open[openID{tenant, id}] = openReservation{windows: w, amount: amount}
	t.window(dayID(tenant, w.Day)).held += amount
	t.window(monthID(tenant, w.Month)).held += amount
}

// settle closes an open reservation; it reports false when (tenant, id) is not
// open.
func (t *totals) settle(tenant, id string, actual Money) (openReservation, bool) {
	k := openID{tenant, id}
	o, ok := t.open[k]
	if !ok {
		return openReservation{}, false
	}
	delete(t.open, k)
	for _, wid := range []windowID{dayID(tenant, o.windows.Day), monthID(tenant, o.windows.Month)} {
		w := t.window(wid)
		w.held -= o.amount
		w.spent = addSat(w.spent, actual)
	}
	return o, true
}

func (t *totals) spent(tenant string, w Windows) Spend {
	return Spend{
		Daily:   t.peek(dayID(tenant, w.Day)).spent,
		Monthly: t.peek(monthID(tenant, w.Month)).spent,
	}
}

package meter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReserveWith: an extra account's caps refuse a reservation the tenant
// has room for, a refusal leaves no hold behind, and settling the tenant's
// reservation settles the extra account's too.
func TestReserveWith(t *testing.T) {
	for _, f := range storeFactories() {
		t.Run(f.name, func(t *testing.T) {
			store, _ := f.new(t)
			ctx := testCtx(t)
			b := NewBudgets(store, map[string]Caps{"acme": {Daily: MoneyFromUSD(100)}})
			key := Account{ID: "@key:k1", Caps: Caps{Daily: MoneyFromUSD(1)}}

			r, err := b.ReserveWith(ctx, "acme", MoneyFromUSD(0.6), "r1", key)
			require.NoError(t, err)
			require.NoError(t, r.Settle(ctx, MoneyFromUSD(0.5)))
			for _, acct := range []string{"acme", "@key:k1"} {
				s, err := b.Spent(ctx, acct)
				require.NoError(t, err)
				assert.Equal(t, MoneyFromUSD(0.5), s.Daily, acct)
			}

			_, err = b.ReserveWith(ctx, "acme", MoneyFromUSD(0.6), "r2", key)
			var ex *ExceededError
			require.ErrorAs(t, err, &ex)
			assert.Equal(t, "@key:k1", ex.Tenant, "the key's cap refused it")

			// The tenant refuses: the key's hold is released.
			k2 := Account{ID: "@key:k2", Caps: Caps{Daily: MoneyFromUSD(300)}}
			_, err = b.ReserveWith(ctx, "acme", MoneyFromUSD(200), "r3", k2)
			require.ErrorAs(t, err, &ex)
			assert.Equal(t, "acme", ex.Tenant)
			r4, err := b.ReserveWith(ctx, "other", MoneyFromUSD(200), "r4", k2)
			require.NoError(t, err, "r3's hold on the key was released")
			require.NoError(t, r4.Release(ctx))
		})
	}
}

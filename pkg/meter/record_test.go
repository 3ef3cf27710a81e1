package meter

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	tests := []record{
		{Op: opReserve, Time: t0, Tenant: "acme", ID: "req-1", Day: "2031-11-27", Month: "2031-11", Amount: 5 * Dollar},
		{Op: opSettle, Time: t0.Add(1234567 * time.Nanosecond), Tenant: `we"ird\ten<ant>`, ID: "id\n\r\t\x00\x1f", Day: "2031-11-27", Month: "2031-11",
			Amount: 0, Reserved: MaxMoney, Recovered: true},
		{Op: opSettle, Time: time.Date(2031, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)).UTC(), Tenant: "ünï€😀", ID: "&<>\u2028", Day: "d", Month: "m", Amount: 1},
	}
	for _, rec := range tests {
		t.Run(rec.Tenant, func(t *testing.T) {
			got := appendRecord(nil, &rec)
			var back record
			require.NoError(t, json.Unmarshal(got, &back), "%s", got)
			assert.Equal(t, rec, back)
			// Same bytes as encoding/json, apart from its HTML escaping.
			want, err := json.Marshal(rec)
			require.NoError(t, err)
			var a, b map[string]any
			require.NoError(t, json.Unmarshal(want, &a))
			require.NoError(t, json.Unmarshal(got, &b))
			assert.Equal(t, a, b)
		})
	}
}

func TestBudgetsRejectInvalidUTF8(t *testing.T) {
	store, _ := storeFactories()[0].new(t)
	b := NewBudgets(store, nil)
	_, err := b.Reserve(testCtx(t), "bad\xff", 1, "id")
	assert.ErrorIs(t, err, ErrInvalidReservation)
}

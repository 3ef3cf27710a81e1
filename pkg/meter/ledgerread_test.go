package meter

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadLedger(t *testing.T) {
	file := `{"op":"reserve","t":"2026-12-01T09:00:00Z","tenant":"acme","id":"r1","day":"2026-12-01","month":"2026-12","amount_pusd":50}
{"op":"settle","t":"2026-12-01T09:00:01Z","tenant":"acme","id":"r1","day":"2026-12-01","month":"2026-12","amount_pusd":20,"reserved_pusd":50}

{"op":"carry","t":"2026-12-02T00:00:00Z","tenant":"acme","id":"","day":"","month":"2026-11","amount_pusd":7}
{"op":"settle","t":"2026-12-0`
	var got []LedgerEntry
	require.NoError(t, ReadLedger(strings.NewReader(file), func(e LedgerEntry) error {
		got = append(got, e)
		return nil
	}))
	require.Len(t, got, 3, "the torn last line is skipped")
	assert.Equal(t, LedgerEntry{Op: LedgerSettle, Time: got[1].Time, Tenant: "acme", ID: "r1", Day: "2026-12-01", Month: "2026-12",
		Amount: 20, Reserved: 50}, got[1])
	assert.Equal(t, "2026-11", got[2].Month)

	err := ReadLedger(strings.NewReader("{\"op\":\"settle\"}\nnot json\n{}\n"), func(LedgerEntry) error { return nil })
	require.ErrorIs(t, err, ErrCorruptLedger)
	assert.Contains(t, err.Error(), "line 2")
	err = ReadLedger(strings.NewReader("{\"op\":\"spend\"}\n"), func(LedgerEntry) error { return nil })
	require.ErrorIs(t, err, ErrCorruptLedger)

	stop := errors.New("stop")
	assert.ErrorIs(t, ReadLedger(strings.NewReader(file), func(LedgerEntry) error { return stop }), stop)
}

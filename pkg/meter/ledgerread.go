package meter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Ops of a ledger file's records (LedgerEntry.Op).
const (
	LedgerReserve = opReserve // a hold taken before a request was sent
	LedgerSettle  = opSettle  // the hold replaced by the request's actual cost
	LedgerCarry   = opCarry   // a window's settled total, written by compaction
)

// LedgerEntry is one record of a file ledger as written. Amounts are exact.
type LedgerEntry struct {
	Op     string
	Time   time.Time
	Tenant string
	ID     string // reservation id; empty for carry records
	Day    string // UTC day window "2006-01-02"; a carry has Day or Month
	Month  string // UTC month window "2006-01"
	// Amount is the hold (reserve), the actual cost (settle) or the
	// window's total (carry).
	Amount Money
	// Reserved is the hold a settle replaced.
	Reserved Money
	// Recovered marks a settle written at open for a reservation whose
	// process died before settling (Amount 0).
	Recovered bool
}

// ReadLedger calls fn with each record of a file ledger read from r, in
// file order, without opening it as a store (no lock, no repair: a running
// server may keep appending). A last line without a newline (a write in
// progress or cut short) is skipped, as OpenFileLedger does; any other
// line that is not a record is an error wrapping ErrCorruptLedger with its
// line number. An error from fn stops the read and is returned.
func ReadLedger(r io.Reader, fn func(LedgerEntry) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read ledger: %w", err)
		}
		if errors.Is(err, io.EOF) {
			return nil // no line, or a torn one
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("line %d: %w: %w", line, ErrCorruptLedger, err)
		}
		switch rec.Op {
		case opReserve, opSettle, opCarry:
		default:
			return fmt.Errorf("line %d: %w: unknown op %q", line, ErrCorruptLedger, rec.Op)
		}
		if err := fn(LedgerEntry(rec)); err != nil {
			return err
		}
	}
}

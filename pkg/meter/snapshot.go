package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// DefaultSnapshotEvery is how many records a FileLedger appends between two
// snapshots when FileLedgerOptions.SnapshotEvery is zero.
const DefaultSnapshotEvery = 100_000

// snapshotHeader is the first line of a snapshot file. The snapshot holds
// the totals after the first Offset bytes of the ledger, whose last record
// line (without its newline) is Last: a snapshot whose Last is not found
// there belongs to another version of the file and is ignored.
type snapshotHeader struct {
	Op      string `json:"op"` // "snapshot"
	Version int    `json:"v"`
	Offset  int64  `json:"offset"`
	Last    string `json:"last"`
}

const opSnapshot = "snapshot"

func snapshotPath(path string) string { return path + ".snapshot" }

// encodeSnapshot renders state as a snapshot of the ledger's first offset
// bytes: the header, one carry record per window with spend, and one reserve
// record per open reservation, sorted so equal states give equal files.
func encodeSnapshot(state *totals, offset int64, last []byte) ([]byte, error) {
	h, err := json.Marshal(snapshotHeader{Op: opSnapshot, Version: 1, Offset: offset, Last: string(last)})
	if err != nil {
		return nil, err
	}
	buf := append(h, '\n')
	ids := make([]windowID, 0, len(state.windows))
	for id, w := range state.windows {
		if w.spent != 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return windowLess(ids[i], ids[j]) })
	for _, id := range ids {
		rec := record{Op: opCarry, Tenant: id.tenant, Amount: state.windows[id].spent}
		if id.kind == 'd' {
			rec.Day = id.key
		} else {
			rec.Month = id.key
		}
		buf = append(appendRecord(buf, &rec), '\n')
	}
	open := make([]openID, 0, len(state.open))
	for k := range state.open {
		open = append(open, k)
	}
	sort.Slice(open, func(i, j int) bool {
		if open[i].tenant != open[j].tenant {
			return open[i].tenant < open[j].tenant
		}
		return open[i].id < open[j].id
	})
	for _, k := range open {
		o := state.open[k]
		rec := record{Op: opReserve, Tenant: k.tenant, ID: k.id, Day: o.windows.Day, Month: o.windows.Month, Amount: o.amount}
		buf = append(appendRecord(buf, &rec), '\n')
	}
	return buf, nil
}

func windowLess(a, b windowID) bool {
	if a.tenant != b.tenant {
		return a.tenant < b.tenant
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	return a.key < b.key
}

// loadSnapshot reads the snapshot of the ledger f (at path) and returns its
// totals and the offset to replay from. Any problem (no snapshot, a torn or
// foreign one, a ledger shorter than the snapshot or with other bytes where
// its last record should be) returns ok false: the caller replays the whole
// ledger, which is always correct, only slower.
func loadSnapshot(path string, f *os.File) (state *totals, offset int64, last []byte, ok bool) {
	data, err := os.ReadFile(snapshotPath(path))
	if err != nil {
		return nil, 0, nil, false
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, 0, nil, false
	}
	var h snapshotHeader
	if json.Unmarshal(data[:nl], &h) != nil || h.Op != opSnapshot || h.Version != 1 || h.Offset < 0 {
		return nil, 0, nil, false
	}
	st, err := f.Stat()
	if err != nil || st.Size() < h.Offset {
		return nil, 0, nil, false
	}
	if h.Offset > 0 {
		want := append([]byte(h.Last), '\n')
		if int64(len(want)) > h.Offset {
			return nil, 0, nil, false
		}
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, h.Offset-int64(len(want))); err != nil || !bytes.Equal(got, want) {
			return nil, 0, nil, false
		}
	}
	state = newTotals()
	rest := data[nl+1:]
	if len(rest) > 0 && rest[len(rest)-1] != '\n' {
		return nil, 0, nil, false // torn: the rename makes this impossible, but be safe
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if applyRecord(rest[:i], state) != nil {
			return nil, 0, nil, false
		}
		rest = rest[i+1:]
	}
	return state, h.Offset, []byte(h.Last), true
}

// writeSnapshot replaces the snapshot file atomically: temp file, fsync,
// rename, directory fsync. A crash leaves the old snapshot or the new one.
func writeSnapshot(path string, data []byte) error {
	final := snapshotPath(path)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(path)
	return nil
}

func syncDir(path string) {
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // make the rename durable; best effort
		_ = d.Close()
	}
}

// Snapshot writes a snapshot of the ledger's totals so the next open replays
// only the records appended after it. The ledger takes one on Close and,
// with the background flush, every SnapshotEvery records; call it to take
// one now (before a planned restart, say).
func (l *FileLedger) Snapshot() error {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	data, err := l.snapshotLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.commitSnapshot(data)
}

// snapshotLocked writes buffered records to the file and encodes the totals
// as of its end. l.mu must be held.
func (l *FileLedger) snapshotLocked() ([]byte, error) {
	if err := l.flushLocked(false); err != nil {
		return nil, err
	}
	data, err := encodeSnapshot(l.state, l.size, l.last)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	l.sinceSnap = 0
	return data, nil
}

// commitSnapshot makes the ledger durable up to the snapshot's offset, then
// the snapshot: a snapshot never describes records that a crash could lose.
func (l *FileLedger) commitSnapshot(data []byte) error {
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("fsync ledger before snapshot: %w", err)
	}
	if err := writeSnapshot(l.path, data); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

package meter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// ErrCorruptLedger is returned by OpenFileLedger when a record other than the
// last one cannot be parsed.
var ErrCorruptLedger = errors.New("corrupt ledger")

// DefaultFlushInterval is how often a FileLedger writes and fsyncs buffered
// records when FileLedgerOptions.FlushInterval is zero.
const DefaultFlushInterval = time.Second

// FileLedgerOptions configures OpenFileLedger.
type FileLedgerOptions struct {
	// FlushInterval: buffered records are written to the file and fsynced this
	// often (default DefaultFlushInterval). Negative disables the background
	// flush (only Flush and Close write); for tests.
	FlushInterval time.Duration
	// SyncEveryWrite writes and fsyncs each record before Reserve or Settle
	// returns: nothing acknowledged is ever lost, at the cost of one fsync
	// per call. Config budgets.ledger.sync: always sets it; interval (the
	// default) leaves it false.
	SyncEveryWrite bool
	// Now stamps the records written at open and decides which windows are
	// past for Compact (default time.Now).
	Now func() time.Time
	// SnapshotEvery: a snapshot of the totals is written every this many
	// appended records (by the background flush), on Close, and at open
	// when the replay read more records than this (default
	// DefaultSnapshotEvery). Open then replays only the records after the
	// snapshot. Negative disables snapshots (and ignores existing ones).
	SnapshotEvery int
	// Compact rewrites the file at open when it holds windows before the
	// current UTC day or month: each remaining window's settled total becomes
	// one "carry" record, past windows are dropped. The rewrite goes to
	// path+".compact", is fsynced and renamed over path.
	Compact bool
}

// FileLedger is the default Store: an append-only JSONL file with one record
// per reserve and per settle, replayed at open.
//
// Durability: records are buffered in memory and written+fsynced every
// FlushInterval, on Flush and on Close. A crash (process or machine) loses at
// most the records of the last FlushInterval: those reservations and
// settlements are forgotten, so spend in that interval is undercounted. Set
// SyncEveryWrite to lose nothing.
//
// Crash recovery at open:
//   - a torn last line (a write cut short) is ignored and the file is
//     truncated back to the end of the last good record before anything is
//     appended, so it never corrupts the next record; an unparsable record
//     before the last line is ErrCorruptLedger;
//   - reservations still open (their process died before settling) are
//     released: a hold is a worst-case bound, not spend, and keeping it
//     would block the tenant's budget for the rest of the window. A settle
//     record with amount 0 marked "recovered" is appended for each. The cost
//     of a request in flight at the crash is therefore not counted, like the
//     records lost in the last FlushInterval.
//
// Start-up: a snapshot of the totals (<path>.snapshot, see Snapshot) lets
// open replay only the records written after it; without one the whole file
// is replayed (about 3 s per million records).
//
// One process may have a ledger file open at a time (enforced with an
// exclusive flock on Unix). The file grows by roughly 350 bytes per request;
// with FileLedgerOptions.Compact, past windows are dropped at open.
type FileLedger struct {
	path string
	opts FileLedgerOptions

	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	state  *totals
	closed bool
	werr   error  // sticky write error
	buf    []byte // record encoding scratch, guarded by mu

	size      int64  // bytes of the file including buffered records
	last      []byte // the last record line (without newline), for snapshots
	sinceSnap int    // records appended since the last snapshot
	// unsynced is when the oldest record not yet fsynced was appended
	// (zero when everything is on disk): Lag.
	unsynced time.Time
	snapMu   sync.Mutex

	stop chan struct{}
	done chan struct{}
}

var _ Store = (*FileLedger)(nil)

// record is one line of the ledger file. Amounts are picodollars.
type record struct {
	Op        string    `json:"op"` // "reserve" or "settle"
	Time      time.Time `json:"t"`
	Tenant    string    `json:"tenant"`
	ID        string    `json:"id"`
	Day       string    `json:"day"`
	Month     string    `json:"month"`
	Amount    Money     `json:"amount_pusd"`             // reserve: held; settle: actual
	Reserved  Money     `json:"reserved_pusd,omitempty"` // settle: the hold it replaces
	Recovered bool      `json:"recovered,omitempty"`     // settle written at open for a dead reservation
}

const (
	opReserve = "reserve"
	opSettle  = "settle"
	opCarry   = "carry" // written by Compact: settled total of one window
)

// OpenFileLedger opens (creating if needed) the ledger at path, replays it,
// repairs a torn tail and settles reservations left open by a previous run.
func OpenFileLedger(path string, opts FileLedgerOptions) (*FileLedger, error) {
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if err := lockWithin(f, lockWait); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock ledger %s (is another tollgate using it?): %w", path, err)
	}
	if opts.SnapshotEvery == 0 {
		opts.SnapshotEvery = DefaultSnapshotEvery
	}
	state, start, last, ok := (*totals)(nil), int64(0), []byte(nil), false
	if opts.SnapshotEvery > 0 {
		state, start, last, ok = loadSnapshot(path, f)
	}
	if !ok {
		state, start, last = newTotals(), 0, nil
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("seek ledger %s: %w", path, err)
	}
	rs, err := replay(f, state, start)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("replay ledger %s: %w", path, err)
	}
	if rs.last != nil || rs.good > start {
		last = rs.last
	}
	if err := repairTail(f, rs.good); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("repair ledger %s: %w", path, err)
	}
	l := &FileLedger{path: path, opts: opts, f: f, w: bufio.NewWriterSize(f, 64<<10), state: state,
		size: rs.good, last: last}
	if err := l.recoverOpen(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("recover open reservations in %s: %w", path, err)
	}
	if opts.Compact {
		if err := l.compact(); err != nil {
			_ = l.f.Close()
			return nil, fmt.Errorf("compact ledger %s: %w", path, err)
		}
	}
	if opts.SnapshotEvery > 0 && rs.records >= opts.SnapshotEvery {
		if err := l.Snapshot(); err != nil {
			_ = l.f.Close()
			return nil, fmt.Errorf("snapshot ledger %s: %w", path, err)
		}
	}
	if opts.FlushInterval > 0 {
		l.stop = make(chan struct{})
		l.done = make(chan struct{})
		go l.flushLoop()
	}
	return l, nil
}

// replayResult says how far a replay got.
type replayResult struct {
	good    int64  // file offset just past the last good line
	last    []byte // that line without its newline; nil if none was read
	records int    // records applied
}

// replay applies every good record from the current position of f, which is
// at file offset base.
func replay(f *os.File, state *totals, base int64) (replayResult, error) {
	r := bufio.NewReaderSize(f, 64<<10)
	res := replayResult{good: base}
	var (
		off     = base
		line    int
		pending error // parse error of the latest line; fatal if another line follows
	)
	for {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer is not one we wrote.
			full := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = r.ReadSlice('\n')
				full = append(full, b...)
			}
			b = full
		}
		if len(b) == 0 && err == io.EOF {
			return res, nil
		}
		if err != nil && err != io.EOF {
			return replayResult{}, fmt.Errorf("read: %w", err)
		}
		line++
		if pending != nil {
			return replayResult{}, pending
		}
		off += int64(len(b))
		complete := err == nil // ends with '\n'
		trimmed := bytes.TrimSpace(b)
		if len(trimmed) == 0 {
			if complete {
				res.good = off
				res.last = append(res.last[:0], b[:len(b)-1]...)
			}
			continue
		}
		if !complete {
			return res, nil // torn tail: no newline, the write was cut short
		}
		if perr := applyRecord(trimmed, state); perr != nil {
			pending = fmt.Errorf("line %d: %w: %w", line, ErrCorruptLedger, perr)
			continue
		}
		res.good = off
		res.last = append(res.last[:0], b[:len(b)-1]...)
		res.records++
	}
}

// replayRecord is the part of a record replay needs: the time stamp is for
// people reading the file, and skipping it halves the cost of a record.
type replayRecord struct {
	Op     string `json:"op"`
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
	Day    string `json:"day"`
	Month  string `json:"month"`
	Amount Money  `json:"amount_pusd"`
}

func applyRecord(b []byte, state *totals) error {
	var rec replayRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return err
	}
	if rec.Op == opCarry {
		if rec.Tenant == "" || (rec.Day == "") == (rec.Month == "") || rec.Amount < 0 {
			return errors.New("carry record needs a tenant and exactly one window")
		}
		id := monthID(rec.Tenant, rec.Month)
		if rec.Day != "" {
			id = dayID(rec.Tenant, rec.Day)
		}
		w := state.window(id)
		w.spent = addSat(w.spent, rec.Amount)
		return nil
	}
	if rec.Tenant == "" || rec.ID == "" || rec.Day == "" || rec.Month == "" || rec.Amount < 0 {
		return errors.New("record misses tenant, id or windows")
	}
	switch rec.Op {
	case opReserve:
		if _, ok := state.open[openID{rec.Tenant, rec.ID}]; ok {
			return fmt.Errorf("reservation %q reserved twice", rec.ID)
		}
		state.reserve(rec.Tenant, rec.ID, Windows{Day: rec.Day, Month: rec.Month}, rec.Amount)
	case opSettle:
		state.settle(rec.Tenant, rec.ID, rec.Amount)
	default:
		return fmt.Errorf("unknown op %q", rec.Op)
	}
	return nil
}

// repairTail cuts the file back to good bytes and positions it for appending.
func repairTail(f *os.File, good int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > good {
		if err := f.Truncate(good); err != nil {
			return fmt.Errorf("truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync after truncate: %w", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		return fmt.Errorf("seek: %w", err)
	}
	return nil
}

func (l *FileLedger) recoverOpen() error {
	if len(l.state.open) == 0 {
		return nil
	}
	now := l.opts.Now().UTC()
	for k, o := range l.state.open {
		rec := record{
			Op: opSettle, Time: now, Tenant: k.tenant, ID: k.id,
			Day: o.windows.Day, Month: o.windows.Month,
			Amount: 0, Reserved: o.amount, Recovered: true,
		}
		if err := l.append(&rec); err != nil {
			return err
		}
		l.state.settle(k.tenant, k.id, 0)
	}
	return l.flushLocked(true)
}

// Reserve implements Store.
func (l *FileLedger) Reserve(_ context.Context, r ReserveRequest) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if err := l.state.check(r); err != nil {
		return err
	}
	rec := record{
		Op: opReserve, Time: r.At.UTC(), Tenant: r.Tenant, ID: r.ID,
		Day: r.Windows.Day, Month: r.Windows.Month, Amount: r.Amount,
	}
	if err := l.write(&rec); err != nil {
		return err
	}
	l.state.reserve(r.Tenant, r.ID, r.Windows, r.Amount)
	return nil
}

// Settle implements Store.
func (l *FileLedger) Settle(_ context.Context, r SettleRequest) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	o, ok := l.state.open[openID{r.Tenant, r.ID}]
	if !ok {
		return nil
	}
	rec := record{
		Op: opSettle, Time: r.At.UTC(), Tenant: r.Tenant, ID: r.ID,
		Day: o.windows.Day, Month: o.windows.Month, Amount: r.Actual, Reserved: o.amount,
	}
	if err := l.write(&rec); err != nil {
		return err
	}
	l.state.settle(r.Tenant, r.ID, r.Actual)
	return nil
}

// Spent implements Store.
func (l *FileLedger) Spent(_ context.Context, tenant string, w Windows) (Spend, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Spend{}, ErrClosed
	}
	return l.state.spent(tenant, w), nil
}

// Flush writes buffered records and fsyncs the file.
func (l *FileLedger) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.flushLocked(true)
}

// Close stops the background flush, flushes, fsyncs and closes the file. It is
// safe to call more than once.
func (l *FileLedger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		<-l.done
	}
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.flushLocked(true)
	if err == nil && l.opts.SnapshotEvery > 0 && l.sinceSnap > 0 {
		var data []byte
		if data, err = l.snapshotLocked(); err == nil {
			err = l.commitSnapshot(data)
		}
	}
	return errors.Join(err, l.f.Close())
}

func (l *FileLedger) usable() error {
	if l.closed {
		return ErrClosed
	}
	if l.werr != nil {
		return fmt.Errorf("ledger write failed earlier: %w", l.werr)
	}
	return nil
}

// write appends rec and, with SyncEveryWrite, makes it durable.
func (l *FileLedger) write(rec *record) error {
	if err := l.append(rec); err != nil {
		return err
	}
	if l.opts.SyncEveryWrite {
		return l.flushLocked(true)
	}
	return nil
}

func (l *FileLedger) append(rec *record) error {
	l.buf = append(appendRecord(l.buf[:0], rec), '\n')
	if _, err := l.w.Write(l.buf); err != nil {
		l.werr = err
		return fmt.Errorf("append record: %w", err)
	}
	l.size += int64(len(l.buf))
	l.last = append(l.last[:0], l.buf[:len(l.buf)-1]...)
	l.sinceSnap++
	if l.unsynced.IsZero() {
		l.unsynced = l.opts.Now()
	}
	return nil
}

// Lag is how long the oldest record not yet fsynced has waited: about the
// flush interval at most while the disk keeps up, growing when writes fail
// (a restart would lose those records). Zero when everything is on disk.
func (l *FileLedger) Lag() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unsynced.IsZero() {
		return 0
	}
	return l.opts.Now().Sub(l.unsynced)
}

func (l *FileLedger) flushLocked(sync bool) error {
	if l.werr != nil {
		return l.werr
	}
	if l.w.Buffered() == 0 && !sync {
		return nil
	}
	if err := l.w.Flush(); err != nil {
		l.werr = err
		return fmt.Errorf("flush ledger: %w", err)
	}
	if sync {
		if err := l.f.Sync(); err != nil {
			l.werr = err
			return fmt.Errorf("fsync ledger: %w", err)
		}
		l.unsynced = time.Time{}
	}
	return nil
}

func (l *FileLedger) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(l.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			// Write under the lock, fsync outside it so Reserve and Settle
			// are not blocked by the disk. Errors are sticky in l.werr and
			// surface on the next Reserve or Settle.
			l.mu.Lock()
			wrote := !l.closed && l.werr == nil && l.w.Buffered() > 0 && l.flushLocked(false) == nil
			flushedAt := l.opts.Now()
			l.mu.Unlock()
			if wrote {
				err := l.f.Sync()
				l.mu.Lock()
				if err != nil {
					l.werr = fmt.Errorf("fsync ledger: %w", err)
				} else if !l.unsynced.After(flushedAt) {
					// Records appended after the write are still buffered.
					l.unsynced = time.Time{}
					if l.w.Buffered() > 0 {
						l.unsynced = flushedAt
					}
				}
				l.mu.Unlock()
			}
			l.mu.Lock()
			due := l.opts.SnapshotEvery > 0 && l.sinceSnap >= l.opts.SnapshotEvery
			l.mu.Unlock()
			if due {
				// A failed snapshot only costs start-up time; the next
				// one retries.
				_ = l.Snapshot()
			}
		}
	}
}

// compact rewrites the ledger keeping only the settled totals of current and
// future windows. It runs at open, after recoverOpen, when no reservation is
// open and the write buffer is empty.
func (l *FileLedger) compact() error {
	now := l.opts.Now().UTC()
	cur := WindowsAt(now)
	past := func(id windowID) bool {
		if id.kind == 'd' {
			return id.key < cur.Day
		}
		return id.key < cur.Month
	}
	ids := make([]windowID, 0, len(l.state.windows))
	dropped := false
	for id := range l.state.windows {
		if past(id) {
			dropped = true
			continue
		}
		ids = append(ids, id)
	}
	if !dropped {
		return nil
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := ids[i], ids[j]
		if a.tenant != b.tenant {
			return a.tenant < b.tenant
		}
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		return a.key < b.key
	})

	kept := newTotals()
	var buf []byte
	for _, id := range ids {
		w := l.state.windows[id]
		if w.spent == 0 {
			continue
		}
		rec := record{Op: opCarry, Time: now, Tenant: id.tenant, Amount: w.spent}
		if id.kind == 'd' {
			rec.Day = id.key
		} else {
			rec.Month = id.key
		}
		buf = append(appendRecord(buf, &rec), '\n')
		kept.window(id).spent = w.spent
	}

	tmp := l.path + ".compact"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := lockFile(f); err != nil {
		return fail(fmt.Errorf("lock: %w", err))
	}
	if _, err := f.Write(buf); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	// The snapshot describes the old file; drop it first so a crash after
	// the rename cannot pair it with the new one (its last-record check
	// would refuse it anyway).
	if err := os.Remove(snapshotPath(l.path)); err != nil && !os.IsNotExist(err) {
		return fail(err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return fail(err)
	}
	syncDir(l.path)
	_ = l.f.Close()
	l.f = f
	l.w = bufio.NewWriterSize(f, 64<<10)
	l.state = kept
	l.size = int64(len(buf))
	l.last = nil
	if i := bytes.LastIndexByte(buf[:max(len(buf)-1, 0)], '\n'); len(buf) > 0 {
		l.last = append([]byte(nil), buf[i+1:len(buf)-1]...)
	}
	l.sinceSnap = len(ids)
	return nil
}

// lockWait is how long OpenFileLedger waits for the exclusive lock. A
// restarting process may still hold it for a moment, and so may a child
// between fork and exec (the lock belongs to the open file, which a fork
// shares until exec closes it).
const lockWait = 3 * time.Second

func lockWithin(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := 5 * time.Millisecond
	for {
		err := lockFile(f)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
}

package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrTampered is matched (errors.Is) by the *BreakError Verify returns when
// the chain is broken.
var ErrTampered = errors.New("audit trail tampered")

// Position is one line of one audit file (line numbers start at 1).
type Position struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

func (p Position) String() string { return p.File + ":" + strconv.Itoa(p.Line) }

// BreakError is the first record where the chain is broken.
type BreakError struct {
	Position
	Reason string
}

func (e *BreakError) Error() string { return e.String() + ": " + e.Reason }

// Is makes errors.Is(err, ErrTampered) true.
func (e *BreakError) Is(target error) bool { return target == ErrTampered }

// Report is the result of Verify.
type Report struct {
	Files   int    `json:"files"`
	Records int    `json:"records"` // records verified before the break, if any
	HeadSeq uint64 `json:"head_seq"`
	Head    string `json:"head"` // hash of the last good record
	// Broken is the first broken record; nil when the chain is intact.
	Broken *BreakError `json:"broken,omitempty"`
	// Torn lists files whose last line has no newline: a write cut short by
	// a crash. The chain skips them (the next record links to the last
	// complete one), so they are not tampering, but they are reported.
	Torn []Position `json:"torn,omitempty"`
}

// OK reports whether the chain is intact.
func (r Report) OK() bool { return r.Broken == nil }

type fileRef struct {
	name string
	num  int
}

func listFiles(dir string) ([]fileRef, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: read dir: %w", err)
	}
	var out []fileRef
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, "audit-") || !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "audit-"), ".jsonl"))
		if err != nil || n <= 0 {
			continue
		}
		out = append(out, fileRef{name: name, num: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].num < out[j].num })
	return out, nil
}

type chainState struct {
	seq  uint64
	hash [sha256.Size]byte
	torn bool
}

// lastRecord finds the chain head for Open: the last complete line of the
// newest file that has one.
func lastRecord(dir string, files []fileRef) (chainState, error) {
	st := chainState{hash: genesis}
	for i := len(files) - 1; i >= 0; i-- {
		data, err := os.ReadFile(filepath.Join(dir, files[i].name))
		if err != nil {
			return st, fmt.Errorf("audit: %w", err)
		}
		if i == len(files)-1 && len(data) > 0 && data[len(data)-1] != '\n' {
			st.torn = true
		}
		end := bytes.LastIndexByte(data, '\n')
		if end < 0 {
			continue
		}
		line := data[bytes.LastIndexByte(data[:end], '\n')+1 : end]
		var h struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(line, &h); err != nil || h.Seq == 0 {
			return st, fmt.Errorf("audit: last record of %s is unreadable (run audit verify): %w", files[i].name, ErrTampered)
		}
		st.seq, st.hash = h.Seq, sha256.Sum256(line)
		return st, nil
	}
	return st, nil
}

// Verify checks the hash chain of every audit file in dir, in order. A
// broken chain yields a Report whose Broken names the first bad record and a
// *BreakError (errors.Is ErrTampered); other errors are I/O errors.
func Verify(dir string) (Report, error) {
	files, err := listFiles(dir)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Head: hex.EncodeToString(genesis[:])}
	st := chainState{hash: genesis}
	for i, f := range files {
		rep.Files++
		if f.num != i+1 {
			rep.Broken = &BreakError{Position{f.name, 0}, "file sequence gap: expected " + FileName(i+1)}
			return rep, rep.Broken
		}
		fh, err := os.Open(filepath.Join(dir, f.name))
		if err != nil {
			return rep, fmt.Errorf("audit: %w", err)
		}
		err = verifyFile(fh, f.name, &st, &rep)
		_ = fh.Close()
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func verifyFile(r io.Reader, name string, st *chainState, rep *Report) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(b) > 0 {
				rep.Torn = append(rep.Torn, Position{name, line})
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", name, err)
		}
		b = b[:len(b)-1]
		if reason := checkLine(b, st); reason != "" {
			rep.Broken = &BreakError{Position{name, line}, reason}
			return rep.Broken
		}
		rep.Records++
		rep.HeadSeq = st.seq
		rep.Head = hex.EncodeToString(st.hash[:])
	}
}

// checkLine verifies one line against the chain state and advances it; it
// returns why the line is broken, or "".
func checkLine(b []byte, st *chainState) string {
	const prefix = `{"seq":`
	if len(b) < len(prefix)+hashSuffixLen || !bytes.HasPrefix(b, []byte(prefix)) {
		return "malformed record"
	}
	suffix := b[len(b)-hashSuffixLen:]
	if !bytes.HasPrefix(suffix, []byte(hashKey)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return "malformed record: no trailing hash"
	}
	// Compare the hex text, not decoded bytes: hex.Decode accepts upper
	// case, which would let a case change of the last record's hash pass.
	sum := sha256.Sum256(b[:len(b)-hashSuffixLen])
	var got [2 * sha256.Size]byte
	hex.Encode(got[:], sum[:])
	if !bytes.Equal(got[:], suffix[len(hashKey):len(hashKey)+2*sha256.Size]) {
		return "record hash mismatch: record was modified"
	}
	var h struct {
		Seq  uint64 `json:"seq"`
		Prev string `json:"prev"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "malformed record: " + err.Error()
	}
	if h.Seq != st.seq+1 {
		return fmt.Sprintf("sequence gap: want seq %d, got %d (records deleted or reordered)", st.seq+1, h.Seq)
	}
	if h.Prev != hex.EncodeToString(st.hash[:]) {
		return "prev does not match the previous record: chain broken"
	}
	st.seq = h.Seq
	st.hash = sha256.Sum256(b)
	return ""
}

// Exit codes of RunVerify.
const (
	ExitOK       = 0
	ExitTampered = 1
	ExitUsage    = 2
	ExitTorn     = 3
)

// RunVerify implements `tollgate audit verify --dir DIR [--json]`. args are
// the arguments after "audit" (a leading "verify" is accepted and skipped).
// It returns the exit code: 0 intact, 1 tampered, 2 usage or I/O error,
// 3 intact but with a torn last line (a crash cut a write short).
func RunVerify(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "verify" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "audit directory (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: tollgate audit verify --dir DIR [--json]")
		return ExitUsage
	}
	rep, err := Verify(*dir)
	if err != nil && !errors.Is(err, ErrTampered) {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitUsage
		}
	} else {
		for _, t := range rep.Torn {
			fmt.Fprintf(stdout, "TORN %s: last line incomplete (write cut short by a crash)\n", t)
		}
		if rep.Broken != nil {
			fmt.Fprintf(stdout, "TAMPERED %s: %s (%d records verified before it)\n", rep.Broken.Position, rep.Broken.Reason, rep.Records)
		} else {
			fmt.Fprintf(stdout, "OK %d records in %d files, head seq %d hash %s\n", rep.Records, rep.Files, rep.HeadSeq, rep.Head)
		}
	}
	switch {
	case rep.Broken != nil:
		return ExitTampered
	case len(rep.Torn) > 0:
		return ExitTorn
	}
	return ExitOK
}

package corpus

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Entity is a labelled span; ByteStart/ByteEnd are UTF-8 byte offsets.
type Entity struct {
	Type      string `json:"type"`
	Value     string `json:"value"`
	ByteStart int    `json:"byte_start"`
	ByteEnd   int    `json:"byte_end"`
}

// Record is one line of a corpus file (injection and PII/secrets shapes).
type Record struct {
	Text     string   `json:"text"`
	Label    string   `json:"label"`
	Category string   `json:"category"`
	Entities []Entity `json:"entities"`
}

// Attack reports whether an injection record is labelled an attack.
func (r Record) Attack() bool { return r.Label == "attack" }

// Load reads dir/data.jsonl.
func Load(dir string) ([]Record, error) {
	f, err := os.Open(filepath.Join(dir, "data.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("open corpus: %w", err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", dir, line, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	return out, nil
}

// Dirs lists the corpus folders under root whose names start with prefix,
// sorted.
func Dirs(root, prefix string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list corpora: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Split is the part of the injection data a record belongs to.
type Split uint8

const (
	Train      Split = iota // fits the weights
	Validation              // chooses the shipped threshold
	Test                    // held out: the only part reported
)

func (s Split) String() string {
	return [...]string{"train", "validation", "test"}[s]
}

// SplitOf assigns a text to a split by its FNV-1a 32 hash modulo 10:
// 0-2 test (30%), 3 validation (10%), 4-9 train (60%). The split depends
// only on the text, so it is the same on every run and machine.
func SplitOf(text string) Split {
	h := fnv.New32a()
	h.Write([]byte(text))
	switch b := h.Sum32() % 10; {
	case b <= 2:
		return Test
	case b == 3:
		return Validation
	default:
		return Train
	}
}

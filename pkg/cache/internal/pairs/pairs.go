// Package pairs reads the paraphrase corpora (cache-*/data.jsonl: one JSON
// object {"a","b","duplicate"} per line) for the cache's offline tools, and
// names the cache-qqp split they share.
package pairs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Pair is one corpus line: a is stored, b is looked up.
type Pair struct {
	A         string `json:"a"`
	B         string `json:"b"`
	Duplicate bool   `json:"duplicate"`
}

// TrainFraction of cache-qqp, by line order, is the training split every
// fitted table and model uses; the rest is held out.
const TrainFraction = 0.7

// TrainCut returns the number of training lines of a corpus of n lines.
func TrainCut(n int) int { return int(float64(n) * TrainFraction) }

// Load reads a corpus file; an empty one is an error.
func Load(path string) ([]Pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open corpus: %w", err)
	}
	defer f.Close()
	var out []Pair
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		var p Pair
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, errors.New(path + ": empty corpus")
	}
	return out, nil
}

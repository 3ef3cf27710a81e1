package corpus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultRoot is where the corpora live, relative to the repository root.
const DefaultRoot = "../shared/corpora"

// EnvRoot names the environment variable that overrides DefaultRoot
// (for `make bench-guard`, which passes no flags).
const EnvRoot = "TOLLGATE_CORPORA"

// Root resolves the corpora folder. A non-empty dir (the -corpora flag) is
// used as given, then $TOLLGATE_CORPORA; otherwise DefaultRoot is taken
// relative to the repository root, found by walking up from the working
// directory to the go.mod, so the tools run from any folder of the
// repository. The folder must exist.
func Root(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(EnvRoot)
	}
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		repo, err := repoRoot(wd)
		if err != nil {
			return "", err
		}
		dir = filepath.Join(repo, DefaultRoot)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("corpora folder %s not found: pass -corpora DIR or set TOLLGATE_CORPORA (the folder holding injection-*, pii-* and secrets-* with their data.jsonl)", dir)
	}
	return dir, nil
}

// repoRoot is the nearest folder at or above dir holding a go.mod.
func repoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod above " + dir + ": run from the repository or pass -corpora DIR")
		}
	}
}

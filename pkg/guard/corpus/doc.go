// Package corpus reads the evaluation corpora in ../shared/corpora (one
// data.jsonl per folder; see that folder's README.md) and defines the fixed
// train / validation / test split used to train and evaluate the
// prompt-injection model. It is used by pkg/guard/cmd/train and
// pkg/guard/cmd/bench, not by the guard at run time.
package corpus

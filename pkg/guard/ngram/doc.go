// Package ngram turns text into hashed word and character n-gram features
// and holds the compact binary format of the linear (logistic regression)
// model that the prompt-injection scorer in package guard embeds.
//
// The same feature function is used by the training program
// (pkg/guard/cmd/train) and at run time, so a model trained here scores
// identically when loaded by the guard.
//
// Normalize folds text before hashing: ASCII lower-casing, common
// confusables (Cyrillic and Greek look-alikes, fullwidth forms,
// mathematical alphanumerics) to their Latin letters, accented Latin
// letters to their base letters, removal of invisible format characters,
// collapsing of whitespace runs, and folding of opaque identifiers to one
// mark.
package ngram

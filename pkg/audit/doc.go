// Package audit writes the tamper-evident audit trail: one JSON record per
// request, appended to size-rotated files (audit-000001.jsonl, ...) and linked
// by a SHA-256 hash chain that runs across rotation.
//
// Each line is a JSON object that starts with the chain fields and ends with
// the record's own hash:
//
//	{"seq":7,"prev":"<hex sha256 of line 6>", ...record fields..., "hash":"<hex>"}
//
// "hash" is the SHA-256 of the line's bytes that precede `,"hash":`; "prev" is
// the SHA-256 of the whole previous line (without its newline), or 64 zeros
// for the first record. Changing any byte of a record breaks that record's
// hash; rewriting a record together with its hash breaks the next record's
// prev; deleting or reordering lines breaks prev and seq. Verify walks the
// files in order and reports the first broken record by file and line.
//
// A hash chain proves integrity relative to its head: whoever can rewrite
// every record after a point can rebuild the chain. Ship the head hash
// (Log.Head) to another system periodically, or keep the files on WORM
// storage, to make a full rewrite detectable.
//
// Records never hold raw prompts or findings' values: findings carry a type
// and a position only. Record.RedactedText is written only when
// Options.RedactedText is set.
package audit

#!/usr/bin/env bash
# Runs every Go fuzz target of the main module for a short time each.
# Usage: scripts/fuzz.sh [duration per target, default 5s]
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-5s}"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $target ($dur)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$dur" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
  done
done
rm -f /tmp/fuzz-$$.log

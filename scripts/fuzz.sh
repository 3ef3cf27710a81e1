#!/usr/bin/env bash
# Runs Go fuzz targets for a fixed time each.
# Usage: scripts/fuzz.sh DURATION [PACKAGE PATTERN ...]   (default: ./...)
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-5s}"
shift || true
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list "${pkgs[@]}"); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $target ($dur)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$dur" >"$log" 2>&1 || { cat "$log"; exit 1; }
  done
done

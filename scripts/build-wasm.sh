#!/usr/bin/env bash
# Builds Tollgate's proxy-wasm router with the standard Go toolchain.
#   scripts/build-wasm.sh [OUT]   (default: wasm/tollgate-router.wasm)
# Needs only Go (>= 1.24; the repo pins 1.26). Prints the module size.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/wasm/tollgate-router.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
mkdir -p "$(dirname "$out")"
cd "$root/wasm"
GOWORK=off GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 \
  go build -buildmode=c-shared -trimpath -ldflags="-s -w" -o "$out" ./cmd/tollgate-router
size=$(wc -c <"$out" | tr -d ' ')
echo "built $out: $size bytes"

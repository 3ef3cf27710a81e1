#!/usr/bin/env bash
# Installs the pinned official OpenAI Node SDK (test/sdk/node/package-lock.json)
# into test/sdk/node/node_modules for the SDK check in test/sdk. Does nothing
# without node and npm (that check is then skipped), and nothing when the
# installed tree already matches the lock file. Called by scripts/deps.sh and
# by the test itself.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/test/sdk/node"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "sdk-node-deps: node or npm not found; the Node SDK check will be skipped" >&2
  exit 0
fi
stamp="$dir/node_modules/.tollgate-lock"
if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
  exit 0
fi
echo "sdk-node-deps: npm ci in test/sdk/node" >&2
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
cp "$dir/package-lock.json" "$stamp"

#!/usr/bin/env bash
# Installs what the tests need beyond Go itself: redis-server (Debian package).
# Idempotent; safe to run on every `make test`.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  echo "deps: installing redis-server (Debian package)" >&2
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  # Debian starts a system redis on 6379; tests start their own on free ports.
fi
redis-server --version >&2

#!/usr/bin/env bash
# Installs what the tests need beyond Go itself, from Debian packages:
#   redis-server  the real Redis the ledger and cache tests start
#   prometheus    for promtool: the alert rule checks and unit tests
#                 (envoy/observability_test.go; they fail under CI=true
#                 without it)
# and, when node and npm exist, the pinned OpenAI Node SDK for test/sdk
# (scripts/sdk-node-deps.sh; npm from the registry, nothing from apt), and
# golangci-lint (pinned, built with go install into bin/).
# Idempotent; safe to run on every `make test`.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
updated=""
install() { # install PACKAGE: apt-get install, running apt-get update once
  if [ -z "$updated" ]; then
    $SUDO apt-get update -qq
    updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}
if ! command -v redis-server >/dev/null 2>&1; then
  echo "deps: installing redis-server (Debian package)" >&2
  install redis-server
  # Debian starts a system redis on 6379; tests start their own on free ports.
fi
redis-server --version >&2
if ! command -v promtool >/dev/null 2>&1; then
  echo "deps: installing promtool (Debian package prometheus)" >&2
  install prometheus
  # The package also enables a Prometheus server on :9090 (Tollgate's
  # default admin port) where systemd runs; only promtool is wanted.
  if command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
promtool --version 2>&1 | head -1 >&2
# golangci-lint, pinned, built from the Go module proxy into bin/ (make lint).
GOLANGCI_LINT_VERSION=v2.15.0
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! "$root/bin/golangci-lint" version 2>/dev/null | grep -q "version ${GOLANGCI_LINT_VERSION#v} "; then
  echo "deps: building golangci-lint $GOLANGCI_LINT_VERSION into bin/ (a few minutes the first time)" >&2
  GOBIN="$root/bin" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
fi
"$root/bin/golangci-lint" version >&2
# The official OpenAI Node SDK for test/sdk, only where Node.js is installed
# (the check skips without it).
# A failed npm install does not stop `make test` here: test/sdk reports it
# (and fails under CI=true).
"$(dirname "$0")/sdk-node-deps.sh" || echo "deps: the OpenAI Node SDK did not install; test/sdk will say why" >&2

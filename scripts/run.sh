#!/usr/bin/env bash
# `make run`: builds Tollgate and starts, on loopback, everything a request
# needs with the embedded default config (envoy/tollgate.yaml):
#   fakeprovider on :8081 and :8082 (an OpenAI-compatible fake upstream),
#   tollgate extproc on :50051 (admin on :9090),
#   the Envoy emulator (test/envoysim) on :10000 with Tollgate's shipped filter.
# Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/ ./cmd/tollgate ./test/fakeprovider/cmd/fakeprovider ./test/envoysim/cmd/envoysim

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

bin/fakeprovider -listen 127.0.0.1:8081 & pids+=($!)
bin/fakeprovider -listen 127.0.0.1:8082 & pids+=($!)
bin/tollgate extproc & pids+=($!)
# With no -config/-filter the emulator runs what `tollgate xds` would push for
# the embedded config: both ext_proc roles, routes on tollgate.route metadata,
# fallback from :8081 to :8082.
bin/envoysim -listen 127.0.0.1:10000 -extproc 127.0.0.1:50051 & pids+=($!)

for _ in $(seq 1 50); do
  curl -fsS http://127.0.0.1:9090/readyz >/dev/null 2>&1 && break
  sleep 0.2
done

cat <<'MSG'

Tollgate is running (Envoy emulator on :10000 -> tollgate extproc on :50051 -> fake providers on :8081, :8082).
Send a request through it with the demo key:

  curl -s http://127.0.0.1:10000/v1/chat/completions \
    -H 'authorization: Bearer sk-tollgate-demo' -H 'content-type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}' -i

Streaming: add "stream": true. Metrics: curl -s http://127.0.0.1:9090/metrics | grep tollgate_
Press Ctrl-C to stop.
MSG
wait

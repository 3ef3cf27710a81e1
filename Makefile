# Tollgate: the two commands a newcomer needs are `make run` and `make test`.
GO ?= go
export TOLLGATE_REQUIRE_REDIS ?= 1

.PHONY: run test deps vet lint unit fuzz fuzz-short mutate bench bench-load bench-guard bench-cache soak wasm build test-envoy image clean

## run: build and start tollgate extproc on the embedded default config, with the fake provider and the Envoy emulator
run:
	scripts/run.sh

## test: everything CI runs (installs redis-server if missing)
test: deps vet lint unit fuzz-short

deps:
	scripts/deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

## lint: golangci-lint with .golangci.yml (bin/golangci-lint, installed by scripts/deps.sh)
lint:
	bin/golangci-lint run ./...

unit:
	$(GO) test -count=1 -timeout 8m ./...
	cd wasm && $(GO) vet ./... && $(GO) test -count=1 ./...
	$(GO) test -count=1 -short -run '^$$' -bench . -benchtime 1x ./... >/dev/null

## fuzz-short: the parser and detector fuzz targets, 3000 inputs each (part of make test; a count, not a
## duration, because a short -fuzztime can end in a spurious "context deadline exceeded" on a loaded machine;
## every other fuzz target runs its seed corpus in the unit tests)
fuzz-short:
	scripts/fuzz.sh 3000x ./pkg/llm ./pkg/guard/... ./pkg/cache

## fuzz: every fuzz target for a minute
fuzz:
	scripts/fuzz.sh 60s

## mutate: plant each bug listed in test/mutate/mutants.yaml and check the tests catch it; fails below
## 95 % or on a stale mutant (not part of make test: see test/mutate/README.md; MUTATE_FLAGS="-only meter/")
mutate: deps
	$(GO) run ./test/mutate $(MUTATE_FLAGS)

## wasm: build wasm/tollgate-router.wasm with the standard Go toolchain (prints its size)
wasm:
	scripts/build-wasm.sh

build:
	mkdir -p bin
	$(GO) build -o bin/ ./cmd/tollgate ./test/fakeprovider/cmd/fakeprovider ./test/envoysim/cmd/envoysim

## bench: Go benchmarks of the hot paths
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./extproc/ ./pkg/...

## bench-load: N concurrent exchanges through the emulator, tollgate vs a pass-through ext_proc server
bench-load: build
	$(GO) run ./test/loadtest -tollgate bin/tollgate

## bench-guard: guardrail accuracy on ../shared/corpora (held-out splits)
bench-guard:
	$(GO) run ./pkg/guard/cmd/bench

## bench-cache: semantic cache hit / false-hit rates on ../shared/corpora/cache-*
bench-cache:
	$(GO) run ./pkg/cache/cmd/bench

## soak: unique prompts at a fixed rate through the Envoy emulator into tollgate extproc (cache and guardrails on); prints RSS and goroutines (SOAK_ARGS="-duration 2m -rate 100")
soak:
	$(GO) run ./test/soak $(SOAK_ARGS)

## test-envoy: e2e scenarios through a real Envoy (ENVOY_BIN=/path/to/envoy, >= 1.33; skips without it; ENVOY_WASM=1 adds the wasm router)
test-envoy:
	ENVOY_BIN="$(ENVOY_BIN)" ENVOY_WASM="$(ENVOY_WASM)" $(GO) test -count=1 -timeout 20m -run '^TestRealEnvoy$$' -v ./test/e2e/

IMAGE ?= tollgate:dev
WASM_IMAGE ?= tollgate-router:dev
## image: container images, needs Docker with BuildKit: the tollgate binary (distroless, non-root) and the wasm router (scratch, /plugin.wasm)
image:
	docker build --target tollgate -t $(IMAGE) .
	docker build --target wasm -t $(WASM_IMAGE) .

clean:
	rm -rf bin

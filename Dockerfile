# syntax=docker/dockerfile:1
#
# Tollgate container images (needs Docker with BuildKit; `make image`).
#
#   docker build -t tollgate:dev .                         # tollgate binary (extproc, xds, validate, ...)
#   docker build --target wasm -t tollgate-router:dev .    # tollgate-router.wasm as a scratch image
#
# The binary is static (CGO_ENABLED=0) and runs as the distroless "nonroot"
# user (65532). The wasm image holds only /plugin.wasm, the layout Istio's
# WasmPlugin and Envoy Gateway's Image code source pull from an OCI registry.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/tollgate ./cmd/tollgate

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS wasm-build
WORKDIR /src
COPY wasm/ ./wasm/
COPY scripts/build-wasm.sh ./scripts/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    scripts/build-wasm.sh /out/tollgate-router.wasm

# The proxy-wasm router as an OCI image: push it and reference it from
# envoy/istio/wasmplugin.yaml (url: oci://...) or
# envoy/gateway/extension-policy.yaml (code.image.url).
FROM scratch AS wasm
COPY --from=wasm-build /out/tollgate-router.wasm /plugin.wasm

FROM gcr.io/distroless/static-debian12:nonroot AS tollgate
COPY --from=build /out/tollgate /usr/local/bin/tollgate
USER 65532:65532
# 50051 ext_proc gRPC, 9090 extproc admin, 18000 ADS, 9091 xds admin
EXPOSE 50051 9090 18000 9091
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["extproc"]

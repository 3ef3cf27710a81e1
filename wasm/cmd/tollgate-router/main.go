// Command tollgate-router is Tollgate's proxy-wasm header router, built with
// the standard Go toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags="-s -w" \
//	    -o tollgate-router.wasm ./cmd/tollgate-router
//
// (scripts/build-wasm.sh does exactly this). The filter is registered in init,
// which runs inside _initialize; main exists only because package main needs
// it and is never called in c-shared mode.
package main

func main() {}

module github.com/tollgate-dev/tollgate/wasm

go 1.26.0

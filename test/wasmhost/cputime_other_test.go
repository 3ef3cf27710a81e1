//go:build !unix

package wasmhost_test

func processCPU() int64 { return 0 }

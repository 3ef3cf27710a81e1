// Package wasmfilter runs Tollgate's compiled proxy-wasm router (through
// test/wasmhost, in wazero) as an envoysim.HeaderFilter, so the emulator's
// filter chain holds the same module Envoy would load.
package wasmfilter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-dev/tollgate/test/envoysim"
	"github.com/tollgate-dev/tollgate/test/wasmhost"
)

// Build compiles the router module of the wasm/ Go module at moduleDir and
// returns its bytes (tests compile it once per package).
func Build(ctx context.Context, moduleDir string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "wasmfilter-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "tollgate-router.wasm")
	if err := wasmhost.Build(ctx, moduleDir, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// Factory returns an envoysim.WasmFactory that runs module with each wasm
// filter's plugin configuration (a google.protobuf.StringValue, as
// translate and the shipped configs write it). A plugin whose
// proxy_on_configure returns false is refused, as Envoy fails the load.
func Factory(module []byte) envoysim.WasmFactory {
	return func(w *wasmfilterv3.Wasm) (envoysim.HeaderFilter, error) {
		var conf wrapperspb.StringValue
		if c := w.GetConfig().GetConfiguration(); c != nil {
			if err := c.UnmarshalTo(&conf); err != nil {
				return nil, fmt.Errorf("wasm configuration: %w", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		env := w.GetConfig().GetVmConfig().GetEnvironmentVariables().GetKeyValues()
		h, err := wasmhost.New(ctx, module, wasmhost.Options{Env: env})
		if err != nil {
			return nil, err
		}
		vm, err := h.NewVM(ctx, nil)
		if err != nil {
			return nil, err
		}
		p, ok, err := vm.Configure(ctx, []byte(conf.GetValue()))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errors.New("wasm plugin refused its configuration (proxy_on_configure returned false)")
		}
		return &filter{plugin: p}, nil
	}
}

// filter serialises calls: a wasmhost VM is single-threaded, like one
// Envoy worker's VM.
type filter struct {
	mu     sync.Mutex
	plugin *wasmhost.Plugin
}

func (f *filter) DecodeHeaders(headers [][2]string) ([][2]string, *envoysim.LocalReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	props := map[string]string{}
	for _, kv := range headers {
		if kv[0] == "x-request-id" {
			props["request.id"] = kv[1]
		}
	}
	res, err := f.plugin.Do(context.Background(), wasmhost.Request{Headers: headers, Properties: props})
	if err != nil {
		return nil, nil, err
	}
	if r := res.Reply; r != nil {
		return nil, &envoysim.LocalReply{Status: int(r.Status), Headers: r.Headers, Body: r.Body, Details: r.Details}, nil
	}
	return res.Headers, nil, nil
}

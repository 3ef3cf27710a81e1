package envoysim

import (
	"fmt"
	"strings"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

// DefaultFilter returns the downstream ext_proc filter Tollgate ships:
// translate.DownstreamExtProc for the embedded default config
// (config.Default()). It panics only if that embedded config does not
// parse, which pkg/config's own tests rule out.
func DefaultFilter() *extprocfilterv3.ExternalProcessor {
	cfg, err := config.Default()
	if err != nil {
		panic(fmt.Sprintf("envoysim: embedded default config: %v", err))
	}
	return translate.DownstreamExtProc(cfg)
}

// FromTollgate returns the Config that runs exactly what Tollgate's control
// plane gives Envoy for c (translate.Envoy: the listener with its filters,
// the route configuration, the aggregate and target clusters), through
// FromResources. Provider endpoints are reached at their address (https for
// TLS clusters); hosts maps "host:port" to another base URL (tests point
// real provider hosts at fakes). wasm builds the proxy-wasm router when
// xds.wasm.enabled (nil: such a config is refused). The caller sets
// ExtProcAddr and the rest.
func FromTollgate(c *config.Config, hosts map[string]string, wasm WasmFactory) (Config, error) {
	// The emulator dials ExtProcAddr itself; a test config listening on an
	// ephemeral port (":0") has no address Envoy could be given.
	cc := *c
	if strings.HasSuffix(cc.XDS.ExtProcTarget, ":0") {
		cc.XDS.ExtProcTarget = "127.0.0.1:50051"
	}
	res, err := translate.Envoy(&cc)
	if err != nil {
		return Config{}, err
	}
	if len(res.Listeners) != 1 {
		return Config{}, fmt.Errorf("envoysim: %d listeners, want 1", len(res.Listeners))
	}
	return FromResources(Resources{
		Listener:   res.Listeners[0],
		Routes:     res.Routes,
		Clusters:   res.Clusters,
		Endpoints:  res.Endpoints,
		Extensions: res.Extensions,
	}, hosts, wasm)
}

package translate

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/config"
)

// Resource names shared with the bootstrap and the ext_proc server.
const (
	// ListenerName is the LLM listener (and the gRPC API listener in the GRPC variant).
	ListenerName = "tollgate"
	// RouteConfigName is the RDS route configuration the listener asks for.
	RouteConfigName = "tollgate"
	// WasmFilterName is the ECDS name of the proxy-wasm router filter config.
	WasmFilterName = WasmPluginName
	// ExtProcFilterName is the ECDS name of the downstream ext_proc filter config.
	ExtProcFilterName = "tollgate.extproc"

	aliasClusterPrefix  = "tollgate/alias/"
	targetClusterPrefix = "tollgate/target/"
)

// AliasClusterName is the aggregate cluster of a model alias.
func AliasClusterName(alias string) string { return aliasClusterPrefix + alias }

// TargetClusterName is the cluster of the index-th target (fallback order) of
// an alias. The upstream ext_proc role sees it as xds.cluster_name and maps it
// back with ParseTargetCluster.
func TargetClusterName(alias string, index int) string {
	return targetClusterPrefix + alias + "/" + strconv.Itoa(index)
}

// ParseTargetCluster inverts TargetClusterName.
func ParseTargetCluster(name string) (alias string, index int, ok bool) {
	rest, found := strings.CutPrefix(name, targetClusterPrefix)
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(rest[i+1:])
	if err != nil || n < 0 || strconv.Itoa(n) != rest[i+1:] {
		return "", 0, false
	}
	return rest[:i], n, true
}

// Model is the validated intermediate form between config and resources:
// every address parsed, every name decided, aliases in a stable order.
type Model struct {
	Listener HostPort
	// ExtProc is where Envoy reaches `tollgate extproc`: a host:port or a pipe.
	ExtProc Upstream
	// WasmPath is the local tollgate-router.wasm file; empty when the wasm router is off.
	WasmPath string
	Aliases  []Alias
	cfg      *config.Config
}

// HostPort is a parsed TCP address.
type HostPort struct {
	Host string
	Port uint32
}

func (h HostPort) String() string { return net.JoinHostPort(h.Host, strconv.Itoa(int(h.Port))) }

// Upstream is a TCP address or, when Pipe is set, a unix socket path.
type Upstream struct {
	HostPort
	Pipe string
}

// Alias is a model alias with its targets in fallback order.
type Alias struct {
	Name    string
	Cluster string
	Targets []Target
	// PerTryTimeout is the largest timeout among the alias's providers: one
	// route carries one per_try_timeout for every attempt.
	PerTryTimeout time.Duration
	// HostRewrite is set when any target is an https provider: the Host
	// header then becomes the chosen provider's host name.
	HostRewrite bool
}

// Target is one provider/model pair of an alias.
type Target struct {
	Cluster  string
	Provider string
	Model    string
	Addr     HostPort
	TLS      bool
	HTTP2    bool
	Timeout  time.Duration
	// PathPrefix is the base_url path (e.g. "/openai"); Envoy resources do not
	// apply it (a route has one prefix_rewrite for all targets).
	PathPrefix string
}

// BuildModel checks what config validation does not (address syntax) and
// decides every resource name. It never mutates c.
func BuildModel(c *config.Config) (*Model, error) {
	if c == nil {
		return nil, errors.New("nil config")
	}
	var errs []error
	m := &Model{cfg: c}
	l, err := parseHostPort(c.XDS.Listener)
	if err != nil {
		errs = append(errs, fmt.Errorf("xds.listener: %w", err))
	}
	m.Listener = l
	if p, ok := strings.CutPrefix(c.XDS.ExtProcTarget, "unix:"); ok {
		if p == "" {
			errs = append(errs, errors.New("xds.extproc_target: empty unix socket path"))
		}
		m.ExtProc.Pipe = p
	} else if hp, err := parseHostPort(c.XDS.ExtProcTarget); err != nil {
		errs = append(errs, fmt.Errorf("xds.extproc_target: %w", err))
	} else {
		m.ExtProc.HostPort = hp
	}
	if c.XDS.Wasm.Enabled {
		m.WasmPath = c.XDS.Wasm.Path
		if len(c.Tenants.Keys) == 0 && c.Tenants.AllowAnonymous == "" {
			// The router refuses such a plugin configuration and, failing
			// closed, would reject every request.
			errs = append(errs, errors.New("xds.wasm.enabled: the wasm router needs tenants.keys or tenants.allow_anonymous"))
		}
	}

	aliases := make([]string, 0, len(c.Models))
	for a := range c.Models {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	for _, name := range aliases {
		a := Alias{Name: name, Cluster: AliasClusterName(name)}
		for i, t := range c.Models[name].Targets {
			p, ok := c.Providers[t.Provider]
			if !ok {
				errs = append(errs, fmt.Errorf("models.%s.targets[%d]: unknown provider %q", name, i, t.Provider))
				continue
			}
			tgt, err := buildTarget(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("providers.%s.base_url: %w", t.Provider, err))
				continue
			}
			tgt.Cluster = TargetClusterName(name, i)
			tgt.Provider = t.Provider
			tgt.Model = t.Model
			a.Targets = append(a.Targets, tgt)
			a.HostRewrite = a.HostRewrite || tgt.TLS
		}
		if len(a.Targets) == 0 {
			errs = append(errs, fmt.Errorf("models.%s: no usable target", name))
		}
		a.PerTryTimeout = c.AttemptTimeout(name)
		m.Aliases = append(m.Aliases, a)
	}
	if len(m.Aliases) == 0 {
		errs = append(errs, errors.New("models: no alias"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("translate %s: %w", c.Source, err)
	}
	return m, nil
}

func buildTarget(p config.Provider) (Target, error) {
	u, err := url.Parse(p.BaseURL)
	if err != nil {
		return Target{}, err
	}
	t := Target{HTTP2: p.HTTP2, Timeout: p.Timeout, PathPrefix: strings.TrimSuffix(u.Path, "/")}
	switch u.Scheme {
	case "https":
		t.TLS = true
		t.Addr.Port = 443
	case "http":
		t.Addr.Port = 80
	default:
		return Target{}, fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	}
	t.Addr.Host = u.Hostname()
	if t.Addr.Host == "" {
		return Target{}, errors.New("missing host")
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || n == 0 {
			return Target{}, fmt.Errorf("bad port %q", ps)
		}
		t.Addr.Port = uint32(n)
	}
	return t, nil
}

func parseHostPort(s string) (HostPort, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return HostPort{}, fmt.Errorf("want host:port: %w", err)
	}
	if h == "" {
		return HostPort{}, fmt.Errorf("want host:port, got %q: empty host", s)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return HostPort{}, fmt.Errorf("want host:port, got %q: bad port", s)
	}
	return HostPort{Host: h, Port: uint32(n)}, nil
}

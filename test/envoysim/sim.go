package envoysim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// Defaults applied by New.
const (
	DefaultMessageTimeout  = 200 * time.Millisecond // Envoy's message_timeout default
	DefaultBufferLimit     = 1 << 20                // per-stream buffer limit (Envoy's per_connection_buffer_limit_bytes default)
	DefaultMaxHeadersCount = 100                    // HCM common_http_protocol_options.max_headers_count default
	DefaultStreamWindow    = 4                      // STREAMED chunks in flight before Envoy waits (emulator choice)
	DefaultRouteHeader     = "x-tollgate-route"
	DefaultClusterName     = "envoysim_upstream"
)

// Clock supplies the timers used for message_timeout, so tests can drive
// timeouts without sleeping.
type Clock interface {
	// Timer returns a channel that receives once after d, and a function that
	// stops the timer.
	Timer(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// Config configures a Sim.
type Config struct {
	// Filter is the real Envoy filter config. Honoured: processing_mode,
	// request_attributes, response_attributes, allow_mode_override,
	// allowed_override_modes, message_timeout (default 200ms),
	// max_message_timeout, failure_mode_allow, mutation_rules,
	// disable_immediate_response, disable_clear_route_cache,
	// route_cache_action, status_on_error, grpc_service.initial_metadata,
	// metadata_options.receiving_namespaces.untyped.
	// nil means an empty ExternalProcessor (Envoy's defaults).
	Filter *extprocfilterv3.ExternalProcessor
	// ExtProcAddr is the gRPC target of the ext_proc server
	// ("127.0.0.1:port" or "unix:///path"); it replaces grpc_service's cluster.
	ExtProcAddr string
	// Upstream is the base URL requests are forwarded to when neither Routes
	// nor MetadataRoutes is set (one target, no retries).
	Upstream string
	// BufferLimit is the per-stream buffer limit in bytes: a BUFFERED request
	// body above it gets a 413 local reply, a BUFFERED response body a 500.
	// Default 1 MiB.
	BufferLimit int
	// Routes optionally maps the value of request header RouteHeader to an
	// upstream base URL. The route is picked from the original request
	// headers and re-picked only after an honoured clear_route_cache. When
	// Routes is non-nil and nothing matches, the router answers 404.
	Routes map[string]string
	// RouteHeader is the header Routes is keyed on (default
	// "x-tollgate-route"; ":authority" models virtual-host routing).
	RouteHeader string
	// ClusterName is the value of the xds.cluster_name attribute when Routes
	// is nil (default "envoysim_upstream"); with Routes the matched route key
	// is the cluster name.
	ClusterName string
	// MetadataRoutes, if set, routes on dynamic metadata written by the
	// filter's replies (see MetadataRouting) instead of Upstream/Routes;
	// routes may have several targets and a retry policy. Mutually
	// exclusive with Routes.
	MetadataRoutes *MetadataRouting
	// UpstreamFilter, if set, is the ext_proc filter of the target clusters'
	// upstream filter chain (Tollgate: translate.UpstreamExtProc): a new
	// side stream per attempt, with its own grpc_service.initial_metadata,
	// processing mode, message_timeout and failure_mode_allow, reaching the
	// same ExtProcAddr. STREAMED body modes are refused.
	UpstreamFilter *extprocfilterv3.ExternalProcessor
	// MaxHeadersCount is the HCM max_headers_count (default 100).
	MaxHeadersCount int
	// StreamWindow is how many STREAMED body chunks may await a reply before
	// the emulator stops reading (default 4).
	StreamWindow int
	// Legacy selects older Envoy behaviour: the spurious-message handling
	// of Envoy <= 1.34 (ignore the message, close the side stream, continue
	// unmodified) instead of the behaviour since envoyproxy/envoy PR #39994
	// (local reply 500 when failure_mode_allow is false); and the upstream
	// ext_proc filter of Envoy <= 1.35, whose local replies are dropped and
	// whose attempt stalls until per_try_timeout, instead of the behaviour
	// since PR #41231 (the local reply is the attempt's final response).
	Legacy bool
	// Clock drives message_timeout; default real timers.
	Clock Clock
	// OnExchange, if set, is called once per HTTP request after the client
	// response has been written, with everything the stream did.
	OnExchange func(Exchange)
	// OnReceive, if set, is called synchronously each time the emulator
	// consumes a message from a side stream (before acting on it).
	OnReceive func(*extprocv3.ProcessingResponse)
	// HTTPClient forwards requests upstream; default a client without
	// timeouts, redirects or transparent compression.
	HTTPClient *http.Client
	// DialOptions are extra options for the gRPC client connection.
	DialOptions []grpc.DialOption

	// chain is set by FromResources: the connection manager's filters and
	// route table built from Envoy resources. It replaces Upstream, Routes,
	// MetadataRoutes and UpstreamFilter.
	chain *chain
}

// Exchange records what one HTTP request did on its side stream.
type Exchange struct {
	RequestID      string                          // x-request-id of the request
	StreamOpened   bool                            // a gRPC stream was opened
	Sent           []*extprocv3.ProcessingRequest  // messages sent to the server, in order
	Received       []*extprocv3.ProcessingResponse // messages consumed from the server, in order
	UpstreamCalled bool                            // the request reached the upstream
	UpstreamURL    string                          // URL the request was forwarded to
	Status         int                             // status written to the client
	LocalReply     bool                            // the response was generated by the emulator (Envoy local reply)
	Details        string                          // response code details of a local reply, e.g. "ext_proc_error_per-message_timeout_exceeded"
	// DynamicMetadata is the request's dynamic metadata at the end of the
	// exchange: one field per namespace, each a Struct (nil if none written).
	DynamicMetadata *structpb.Struct
	// Route is the routing key of the route finally used ("" if none).
	Route string
	// Attempts lists the upstream attempts in order (empty when the
	// request never reached the router's upstream stage).
	Attempts []Attempt
}

// Attempt is one upstream try of the router.
type Attempt struct {
	Cluster string // target cluster name (the upstream filter's xds.cluster_name)
	URL     string // URL the attempt was sent to
	Status  int    // response status after the upstream filter (0: no response headers)
	// Err is set when the attempt ended without response headers: a
	// connect failure or reset (the transport error), the per-try timeout
	// (wraps ErrPerTryTimeout, and ErrUpstreamFilterStalled when the
	// upstream filter's local reply was dropped), or ErrContentLengthMismatch.
	Err error
	// Retried reports that the router retried after this attempt.
	Retried bool
	// The upstream filter's side stream of this attempt (UpstreamFilter set).
	StreamOpened bool
	Sent         []*extprocv3.ProcessingRequest
	Received     []*extprocv3.ProcessingResponse
	// RequestHeaders and RequestBody are what was sent upstream.
	RequestHeaders http.Header
	RequestBody    []byte
}

// Sim is the emulator. It is safe for concurrent use.
type Sim struct {
	cfg          Config
	conn         *grpc.ClientConn
	down         *filterConf // the HCM's ext_proc filter
	up           *filterConf // Config.UpstreamFilter, or nil
	defaultRoute *route      // Config.Upstream
	routes       map[string]*route
	metaRoutes   map[string]*route
	table        *routeTable    // from Resources
	header       []HeaderFilter // decoder filters before ext_proc (wasm)
	stats        counters
	upStats      counters

	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener
}

// ErrUnsupported marks filter settings the emulator does not model.
var ErrUnsupported = errors.New("not modelled by envoysim")

// New validates cfg and returns a Sim. The gRPC connection is created lazily
// (the first stream dials).
func New(cfg Config) (*Sim, error) {
	var errs []error
	if cfg.ExtProcAddr == "" {
		errs = append(errs, errors.New("ExtProcAddr is required"))
	}
	if cfg.Upstream == "" && cfg.Routes == nil && cfg.MetadataRoutes == nil && cfg.chain == nil {
		errs = append(errs, errors.New("one of Config.Upstream, Routes, MetadataRoutes or FromResources is required"))
	}
	if cfg.chain != nil && (cfg.Upstream != "" || cfg.Routes != nil || cfg.MetadataRoutes != nil || cfg.UpstreamFilter != nil) {
		errs = append(errs, errors.New("a Config from FromResources takes its routes and filters from the resources"))
	}
	if cfg.Routes != nil && cfg.MetadataRoutes != nil {
		errs = append(errs, errors.New("config: Routes and MetadataRoutes are mutually exclusive"))
	}
	s := &Sim{cfg: cfg, routes: make(map[string]*route, len(cfg.Routes))}
	if s.cfg.ClusterName == "" {
		s.cfg.ClusterName = DefaultClusterName
	}
	if cfg.Upstream != "" {
		u, err := parseBase(cfg.Upstream)
		if err != nil {
			errs = append(errs, fmt.Errorf("config.Upstream: %w", err))
		}
		s.defaultRoute = singleRoute(s.cfg.ClusterName, s.cfg.ClusterName, u)
	}
	for k, v := range cfg.Routes {
		u, err := parseBase(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config.Routes[%q]: %w", k, err))
		}
		s.routes[k] = singleRoute(k, k, u)
	}
	if mr := cfg.MetadataRoutes; mr != nil {
		if mr.Namespace == "" || mr.Key == "" {
			errs = append(errs, errors.New("MetadataRoutes: Namespace and Key are required"))
		}
		s.metaRoutes = make(map[string]*route, len(mr.Routes))
		for k, rt := range mr.Routes {
			r, err := resolveRoute(k, rt)
			if err != nil {
				errs = append(errs, fmt.Errorf("MetadataRoutes.Routes[%q]: %w", k, err))
			}
			s.metaRoutes[k] = r
		}
	}
	down, ferrs := newFilterConf(cfg.Filter, false, &s.stats)
	errs = append(errs, ferrs...)
	s.down = down
	var routeFilters []*filterConf
	if ch := cfg.chain; ch != nil {
		s.table, s.header = ch.table, ch.header
		if ch.extProc == nil {
			errs = append(errs, fmt.Errorf("a connection manager without an ext_proc filter: %w", ErrUnsupported))
		}
		for _, e := range s.table.entries {
			if e.route == nil || e.route.upFilterConfig == nil || e.route.upFilter != nil {
				continue
			}
			fc, ferrs := newFilterConf(e.route.upFilterConfig, true, &s.upStats)
			for _, err := range ferrs {
				errs = append(errs, fmt.Errorf("cluster %s upstream filter: %w", e.route.cluster, err))
			}
			// Routes to the same cluster share one filter instance.
			for _, o := range s.table.entries {
				if o.route != nil && o.route.upFilterConfig == e.route.upFilterConfig {
					o.route.upFilter = fc
				}
			}
			routeFilters = append(routeFilters, fc)
		}
	}
	if cfg.UpstreamFilter != nil {
		up, ferrs := newFilterConf(cfg.UpstreamFilter, true, &s.upStats)
		for _, e := range ferrs {
			errs = append(errs, fmt.Errorf("UpstreamFilter: %w", e))
		}
		s.up = up
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("envoysim: invalid config: %w", err)
	}
	if s.cfg.BufferLimit <= 0 {
		s.cfg.BufferLimit = DefaultBufferLimit
	}
	if s.cfg.MaxHeadersCount <= 0 {
		s.cfg.MaxHeadersCount = DefaultMaxHeadersCount
	}
	if s.cfg.StreamWindow <= 0 {
		s.cfg.StreamWindow = DefaultStreamWindow
	}
	if s.cfg.RouteHeader == "" {
		s.cfg.RouteHeader = DefaultRouteHeader
	}
	if s.cfg.Clock == nil {
		s.cfg.Clock = realClock{}
	}
	if s.cfg.HTTPClient == nil {
		s.cfg.HTTPClient = &http.Client{
			Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.ExtProcAddr, opts...)
	if err != nil {
		return nil, fmt.Errorf("envoysim: grpc client for %q: %w", cfg.ExtProcAddr, err)
	}
	s.conn = conn
	client := extprocv3.NewExternalProcessorClient(conn)
	if s.down != nil {
		s.down.client = client
	}
	if s.up != nil {
		s.up.client = client
	}
	for _, fc := range routeFilters {
		fc.client = client
	}
	return s, nil
}

func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("missing host")
	}
	return u, nil
}

func validateFilter(f *extprocfilterv3.ExternalProcessor) []error {
	var errs []error
	pm := f.GetProcessingMode()
	for name, m := range map[string]extprocfilterv3.ProcessingMode_BodySendMode{
		"request_body_mode": pm.GetRequestBodyMode(), "response_body_mode": pm.GetResponseBodyMode(),
	} {
		if !supportedBodyMode(m) {
			errs = append(errs, fmt.Errorf("processing_mode.%s %s: %w", name, m, ErrUnsupported))
		}
	}
	if f.GetObservabilityMode() {
		errs = append(errs, fmt.Errorf("observability_mode: %w", ErrUnsupported))
	}
	if f.GetHttpService() != nil {
		errs = append(errs, fmt.Errorf("http_service: %w", ErrUnsupported))
	}
	if f.GetSendBodyWithoutWaitingForHeaderResponse() {
		errs = append(errs, fmt.Errorf("send_body_without_waiting_for_header_response: %w", ErrUnsupported))
	}
	if d := f.GetMessageTimeout(); d != nil && d.AsDuration() <= 0 {
		errs = append(errs, errors.New("message_timeout must be positive"))
	}
	return errs
}

func supportedBodyMode(m extprocfilterv3.ProcessingMode_BodySendMode) bool {
	switch m {
	case extprocfilterv3.ProcessingMode_NONE, extprocfilterv3.ProcessingMode_BUFFERED, extprocfilterv3.ProcessingMode_STREAMED:
		return true
	}
	return false
}

// ServeHTTP runs one exchange: request phases, upstream, response phases.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := newExchange(r.Context(), s, s.down, w, r)
	ex.run()
	ex.finish()
}

// Start listens on 127.0.0.1:0 and serves in the background. It returns
// the base URL, e.g. "http://127.0.0.1:41234".
func (s *Sim) Start() (string, error) {
	return s.Listen("127.0.0.1:0")
}

// Listen listens on addr and serves in the background.
func (s *Sim) Listen(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New("envoysim: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("envoysim: listen %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	srv := s.srv
	go func() {
		// Serve returns http.ErrServerClosed after Close; nothing to report.
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops the HTTP server (if started) and the gRPC connection.
func (s *Sim) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	var errs []error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			errs = append(errs, srv.Close())
		}
	}
	if err := s.conn.Close(); err != nil {
		errs = append(errs, fmt.Errorf("grpc close: %w", err))
	}
	return errors.Join(errs...)
}

// Stats returns a snapshot of the counters.
func (s *Sim) Stats() Stats {
	st := s.stats.snapshot()
	st.UpstreamFilter = s.upStats.filterSnapshot()
	return st
}

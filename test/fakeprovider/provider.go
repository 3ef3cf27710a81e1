package fakeprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// defaultModels is what GET /v1/models lists unless Options.Models is set.
func defaultModels() []string {
	return []string{"gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo-instruct", "text-embedding-3-small"}
}

// maxBodyBytes bounds a request body.
const maxBodyBytes = 32 << 20

// Options configures a Provider. The zero value is a working provider; every
// per-request header has a per-instance counterpart here, used when the
// request does not carry the header.
type Options struct {
	// Addr is where Start listens; default "127.0.0.1:0".
	Addr string
	// Reply is a fixed reply text (x-fake-reply). Empty means DefaultReply.
	Reply string
	// ReplyMode "echo" replies with the last user message (x-fake-reply-mode).
	ReplyMode string
	// Usage overrides token counts (x-fake-usage).
	Usage Usage
	// Fault is a fault directive list (x-fake-fault), applied to every request
	// without that header.
	Fault string
	// Chunks is the number of content chunks in a stream (x-fake-chunks);
	// default DefaultChunks.
	Chunks int
	// ChunkDelay is the pause between stream chunks (x-fake-chunk-delay).
	ChunkDelay time.Duration
	// Model, when set, is returned as every response's model field (like the
	// model=<name> fault).
	Model string
	// SystemFingerprint is returned in chat and completion responses; default "fp_fake".
	SystemFingerprint string
	// Models lists the ids for GET /v1/models.
	Models []string
	// EmbeddingDimensions is the embedding vector length when the request
	// does not set "dimensions"; default 64.
	EmbeddingDimensions int
	// APIKey, when set, is required as "Authorization: Bearer <APIKey>"
	// (with Azure, as "api-key: <APIKey>"); other requests get a 401.
	APIKey string
	// Azure serves Azure OpenAI's paths instead of OpenAI's: POST
	// /openai/deployments/{deployment}/chat/completions, /completions and
	// /embeddings, each requiring an api-version query parameter (404
	// without one, as Azure answers) and an api-key header (401 without
	// one; Authorization is not a credential there).
	Azure bool
	// Now is the clock for "created"; default time.Now.
	Now func() time.Time
	// Logger receives one line per request; default discards.
	Logger *slog.Logger
	// NoRecording keeps Requests empty (Calls still counts): for load tests,
	// where recording every body would grow without bound.
	NoRecording bool
}

// Recorded is one request the provider received.
type Recorded struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// Provider is the fake upstream. It is an http.Handler; Start serves it on a
// loopback port.
type Provider struct {
	opts   Options
	mux    *http.ServeMux
	logger *slog.Logger

	mu       sync.Mutex
	requests []Recorded
	calls    int
	seq      int64 // response ids; not reset, so ids stay unique per instance

	srvMu sync.Mutex
	srv   *http.Server
	ln    net.Listener
}

var _ http.Handler = (*Provider)(nil)

// New returns a provider with the given options.
func New(opts Options) *Provider {
	if opts.SystemFingerprint == "" {
		opts.SystemFingerprint = "fp_fake"
	}
	opts.Models = append([]string(nil), opts.Models...) // the caller keeps its slice
	if len(opts.Models) == 0 {
		opts.Models = defaultModels()
	}
	if opts.EmbeddingDimensions <= 0 {
		opts.EmbeddingDimensions = 64
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Provider{opts: opts, logger: opts.Logger, mux: http.NewServeMux()}
	type route struct {
		pattern string
		handle  func(http.ResponseWriter, *http.Request, []byte, behaviour)
	}
	routes := []route{
		{"POST /v1/chat/completions", p.chatCompletions},
		{"POST /v1/completions", p.completions},
		{"POST /v1/embeddings", p.embeddings},
		{"POST /v1/responses", p.responses},
		{"GET /v1/models", p.models},
		{"GET /v1/models/{id}", p.model},
	}
	if opts.Azure {
		routes = []route{
			{"POST " + azurePrefix + "chat/completions", p.chatCompletions},
			{"POST " + azurePrefix + "completions", p.completions},
			{"POST " + azurePrefix + "embeddings", p.embeddings},
		}
	}
	for _, r := range routes {
		p.mux.Handle(r.pattern, p.endpoint(r.handle))
	}
	p.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "invalid_request_error", "", "")
	})
	return p
}

// Start serves the provider on Options.Addr (default 127.0.0.1:0) and
// returns its base URL, "http://127.0.0.1:PORT" (an OpenAI SDK wants
// baseURL+"/v1/").
func (p *Provider) Start() (string, error) {
	addr := p.opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.srv != nil {
		return "", errors.New("fakeprovider: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("fakeprovider: listen %s: %w", addr, err)
	}
	p.ln = ln
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.logger.Error("fakeprovider: serve", "err", err)
		}
	}(p.srv)
	return "http://" + ln.Addr().String(), nil
}

// StartTest starts a provider with opts for the length of test t (closed
// by t.Cleanup) and returns it with its base URL; a failed start fails t.
func StartTest(t testing.TB, opts Options) (*Provider, string) {
	t.Helper()
	p := New(opts)
	base, err := p.Start()
	if err != nil {
		t.Fatalf("fakeprovider: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, base
}

// Addr is the listening address (host:port) after Start, "" before.
func (p *Provider) Addr() string {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.ln == nil {
		return ""
	}
	return p.ln.Addr().String()
}

// Close stops the server and drops open connections. Closing a provider
// that was never started is a no-op.
func (p *Provider) Close() error {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.srv == nil {
		return nil
	}
	err := p.srv.Close()
	if err != nil {
		return fmt.Errorf("fakeprovider: close: %w", err)
	}
	return nil
}

// Requests returns a copy of every request received since New or Reset, in
// arrival order.
func (p *Provider) Requests() []Recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Recorded, len(p.requests))
	for i, r := range p.requests {
		out[i] = Recorded{Method: r.Method, Path: r.Path, Query: r.Query, Header: r.Header.Clone(), Body: bytes.Clone(r.Body)}
	}
	return out
}

// Calls is the number of requests received since New or Reset.
func (p *Provider) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// Reset forgets the recorded requests.
func (p *Provider) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = nil
	p.calls = 0
}

// ServeHTTP records the request and answers it.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mux.ServeHTTP(w, r)
}

func (p *Provider) nextID() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	return p.seq
}

// endpoint wraps a handler with recording, auth, behaviour parsing and the
// status and delay faults shared by every endpoint.
func (p *Provider) endpoint(h func(http.ResponseWriter, *http.Request, []byte, behaviour)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		p.mu.Lock()
		p.calls++
		if !p.opts.NoRecording {
			p.requests = append(p.requests, Recorded{
				Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
				Header: r.Header.Clone(), Body: bytes.Clone(body),
			})
		}
		p.mu.Unlock()
		p.logger.Info("fakeprovider request", "method", r.Method, "path", r.URL.Path, "bytes", len(body))
		if err != nil {
			writeError(w, http.StatusBadRequest, "could not read the request body: "+err.Error(), "invalid_request_error", "", "")
			return
		}
		if len(body) > maxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large", "invalid_request_error", "", "")
			return
		}
		if p.opts.Azure {
			if !p.azureAuthorized(w, r) {
				return
			}
		} else if p.opts.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+p.opts.APIKey {
			writeError(w, http.StatusUnauthorized, "Incorrect API key provided.", "invalid_request_error", "", "invalid_api_key")
			return
		}
		b, err := resolveBehaviour(r.Header, &p.opts)
		if err != nil {
			writeError(w, http.StatusBadRequest, "fakeprovider: "+err.Error(), "invalid_request_error", "", "")
			return
		}
		if !sleepCtx(r.Context(), b.fault.SlowFirstByte) {
			return
		}
		switch b.fault.Status {
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", "1")
			w.Header().Set("x-ratelimit-limit-requests", "60")
			w.Header().Set("x-ratelimit-remaining-requests", "0")
			w.Header().Set("x-ratelimit-reset-requests", "1s")
			writeError(w, http.StatusTooManyRequests, "Rate limit reached for requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 1s.", "requests", "", "rate_limit_exceeded")
			return
		case http.StatusInternalServerError:
			writeError(w, http.StatusInternalServerError, "The server had an error while processing your request. Sorry about that!", "server_error", "", "")
			return
		case http.StatusServiceUnavailable:
			writeError(w, http.StatusServiceUnavailable, "The engine is currently overloaded, please try again later.", "server_error", "", "service_unavailable")
			return
		}
		h(w, r, body, b)
	})
}

// azurePrefix is the start of every Azure OpenAI data-plane pattern.
const azurePrefix = "/openai/deployments/{deployment}/"

// azureAuthorized answers a request Azure OpenAI would refuse: no
// api-version (404), no or the wrong api-key (401), and reports whether
// the request may go on.
func (p *Provider) azureAuthorized(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Query().Get("api-version") == "" {
		writeError(w, http.StatusNotFound, "Resource not found", "invalid_request_error", "", "404")
		return false
	}
	key := r.Header.Get("api-key")
	if key == "" || (p.opts.APIKey != "" && key != p.opts.APIKey) {
		writeError(w, http.StatusUnauthorized, "Access denied due to invalid subscription key or wrong API endpoint.", "invalid_request_error", "", "401")
		return false
	}
	return true
}

// responseModel is the model field to return: a fault's model=, then
// Options.Model, then the requested model.
func (p *Provider) responseModel(b *behaviour, requested string) string {
	if b.fault.Model != "" {
		return b.fault.Model
	}
	if p.opts.Model != "" {
		return p.opts.Model
	}
	return requested
}

// buildUsage applies overrides to computed counts.
func buildUsage(prompt, completion int64, o Usage) completionUsage {
	var cached, reasoning int64
	if o.Prompt != nil {
		prompt = *o.Prompt
	}
	if o.Completion != nil {
		completion = *o.Completion
	}
	if o.Cached != nil {
		cached = *o.Cached
	}
	if o.Reasoning != nil {
		reasoning = *o.Reasoning
	}
	return completionUsage{
		PromptTokens:            prompt,
		CompletionTokens:        completion,
		TotalTokens:             prompt + completion,
		PromptTokensDetails:     usageDetailsPrompt{CachedTokens: cached},
		CompletionTokensDetails: usageDetailsCompletion{ReasoningTokens: reasoning},
	}
}

// writeJSON writes v as the response body, honouring the malformed-json and
// cut-stream faults.
func (p *Provider) writeJSON(w http.ResponseWriter, status int, v any, f Fault) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "fakeprovider: marshal: "+err.Error(), "server_error", "", "")
		return
	}
	if f.Malformed {
		data = data[:len(data)/2]
	}
	w.Header().Set("Content-Type", "application/json")
	if f.CutAfter >= 0 && f.CutAfter < len(data) {
		// Promise the full body, send part of it, drop the connection.
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(status)
		_, _ = w.Write(data[:f.CutAfter])
		p.dropConnection(w)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func writeError(w http.ResponseWriter, status int, msg, typ, param, code string) {
	e := apiError{Error: apiErrorBody{Message: msg, Type: typ}}
	if param != "" {
		e.Error.Param = &param
	}
	if code != "" {
		e.Error.Code = &code
	}
	data, _ := json.Marshal(e) // plain strings: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// dropConnection flushes what was written and closes the TCP connection
// without finishing the response (no terminating chunk): the client sees an
// unexpected EOF after the bytes already sent.
func (p *Provider) dropConnection(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		// Not HTTP/1 (or a recorder): the response ends normally, truncated.
		p.logger.Warn("fakeprovider: cannot drop the connection", "err", err)
		return
	}
	_ = conn.Close()
}

// sleepCtx waits d or until ctx ends; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

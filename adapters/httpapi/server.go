package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Version is the API version in every OpenAPI document.
const Version = "1.0.0"

// ServerConfig configures one HTTP listener.
type ServerConfig struct {
	// Addr is host:port to listen on; port 0 picks a free one.
	Addr string
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// on shutdown.
	ShutdownTimeout time.Duration `env:"KCHAT_SHUTDOWN_TIMEOUT" envDefault:"20s"`
}

// Validate reports a wrong setting, naming the variable addrVar for Addr.
func (c ServerConfig) Validate(addrVar string) error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%s: %q is not host:port (e.g. :8000)", addrVar, c.Addr)
	}
	if c.ShutdownTimeout < time.Second || c.ShutdownTimeout > 5*time.Minute {
		return fmt.Errorf("KCHAT_SHUTDOWN_TIMEOUT must be between 1s and 5m, got %s", c.ShutdownTimeout)
	}
	return nil
}

// Check is one readiness dependency: nil means reachable.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Server is one kchat HTTP service: a chi router with the shared system
// routes and a huma API for the service's own operations.
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	router chi.Router
	api    huma.API
	checks []Check
	srv    *http.Server
	addr   net.Addr
	served chan error
}

// NewServer builds a server titled title. middlewares wrap every route,
// outermost first, after the request id and panic recovery (the gateway's
// edge, adapters/auth, goes there).
//
// Metrics are not served here: /metrics and Go's profiling endpoints are
// on the process's admin listener (KCHAT_ADMIN_ADDR, cmd/internal/runner),
// apart from the API and loopback by default. Requests are counted and
// timed by the HTTPMetrics middleware each service passes first.
func NewServer(cfg ServerConfig, title string, checks []Check, log *slog.Logger, middlewares ...func(http.Handler) http.Handler) *Server {
	router := chi.NewRouter()
	router.Use(middleware.RequestID, middleware.Recoverer)
	router.Use(middlewares...)

	api := humachi.New(router, apiConfig(title))

	s := &Server{cfg: cfg, log: log, router: router, api: api, checks: checks}
	s.registerHealth()
	router.Handle("/docs", http.RedirectHandler("/docs/", http.StatusMovedPermanently))
	router.Mount("/docs/", http.StripPrefix("/docs/", docsHandler()))
	return s
}

// apiConfig is the huma configuration of every kchat API: what it reads
// and writes (jsonFormat) and how its errors look (problemTransformer).
func apiConfig(title string) huma.Config {
	hc := huma.DefaultConfig(title, Version)
	hc.DocsPath = ""    // the default docs page needs a CDN; see docs.go
	hc.SchemasPath = "" // no $schema links in bodies: the seed's shapes stay as they were
	hc.CreateHooks = nil
	hc.Transformers = []huma.Transformer{problemTransformer}
	hc.Formats = map[string]huma.Format{"application/json": jsonFormat, "json": jsonFormat}
	return hc
}

// NewRegistry returns the metrics registry of a process, with Go runtime and
// process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// API is where the service registers its operations.
func (s *Server) API() huma.API { return s.api }

// Handler serves every route; tests use it without a listener.
func (s *Server) Handler() http.Handler { return s.router }

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	if s.addr == nil {
		return ""
	}
	return s.addr.String()
}

// Start listens (so a taken port fails startup) and serves in the background.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	s.addr = ln.Addr()
	s.srv = newHTTPServer(s.router)
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(ln) }()
	s.log.Info("http server listening", "addr", s.Addr(), "title", s.api.OpenAPI().Info.Title)
	return nil
}

// Timeouts of every kchat HTTP server. There is no ReadTimeout or
// WriteTimeout: they would cut the long answers (POST /chat waits for its
// answer, GET /messages long-polls) and outlive the upgrade on hijacked
// WebSocket connections, which set deadlines of their own; bodies are
// bounded in size by each route instead.
const (
	// readHeaderTimeout drops a client that trickles its request line and
	// headers (slowloris).
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes a keep-alive connection with no request in it.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes bounds request headers (Go's default is 1 MiB).
	maxHeaderBytes = 64 << 10
)

// newHTTPServer is the net/http server of a kchat service.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
}

// Stop stops accepting connections and waits for in-flight requests, at
// most the shutdown timeout.
func (s *Server) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// Mount serves handler under pattern on the same router (the gateway's
// WebSocket endpoint and web page).
func (s *Server) Mount(pattern string, handler http.Handler) {
	s.router.Handle(pattern, handler)
}

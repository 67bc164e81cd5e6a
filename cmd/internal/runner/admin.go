package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
)

// AdminConfig places the admin listener: the process's /metrics and Go's
// profiling endpoints (/debug/pprof/), on an address of their own, apart
// from the API, because they reveal internals (docs/security.md, "The
// admin listener"). It replaces KCHAT_PPROF_ADDR.
type AdminConfig struct {
	// Addr is host:port; empty: the service's default (AdminAddrs), on
	// loopback.
	Addr string `env:"KCHAT_ADMIN_ADDR"`
}

// AdminAddrs are the default admin addresses: loopback, one port per
// service (its API port + 100), so that the four binaries run side by side
// on one machine; the all-in-one has one listener for all its services.
var AdminAddrs = map[string]string{
	"producer": "127.0.0.1:8100",
	"consumer": "127.0.0.1:8101",
	"gateway":  "127.0.0.1:8102",
	"answerer": "127.0.0.1:8103",
	"kchat":    "127.0.0.1:8100",
}

// Validate checks the address.
func (c AdminConfig) Validate() error {
	if c.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("KCHAT_ADMIN_ADDR: %q is not host:port (e.g. 127.0.0.1:8100)", c.Addr)
	}
	return nil
}

// AdminServer is the admin listener of a process.
type AdminServer struct {
	addr     string
	explicit bool // KCHAT_ADMIN_ADDR set: failing to listen fails startup
	reg      *prometheus.Registry
	log      *slog.Logger
	srv      *http.Server
	ln       net.Listener
	served   chan error
}

// NewAdminServer returns the admin listener of service, serving reg.
func NewAdminServer(cfg AdminConfig, service string, reg *prometheus.Registry, log *slog.Logger) *AdminServer {
	s := &AdminServer{addr: cfg.Addr, explicit: cfg.Addr != "", reg: reg, log: log}
	if s.addr == "" {
		s.addr = AdminAddrs[service]
	}
	return s
}

// Admin is the fx option of a process's admin listener: it starts before
// the services (and stops after them), so their startup can be profiled.
func Admin(cfg AdminConfig, service string) fx.Option {
	return fx.Options(
		fx.Provide(func(reg *prometheus.Registry, log *slog.Logger) *AdminServer {
			return NewAdminServer(cfg, service, reg, log)
		}),
		fx.Invoke(func(lc fx.Lifecycle, s *AdminServer) { lc.Append(fx.StartStopHook(s.Start, s.Stop)) }),
	)
}

// Handler serves /metrics and /debug/pprof/.
func (s *AdminServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Addr is where the listener listens once started; empty when it could
// not.
func (s *AdminServer) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Start listens and serves in the background. An address the operator
// chose that cannot be listened on fails startup; the default one, taken
// (a second replica on the same machine), is logged as an ERROR naming
// KCHAT_ADMIN_ADDR and the service runs without its admin listener.
func (s *AdminServer) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		if s.explicit {
			return fmt.Errorf("KCHAT_ADMIN_ADDR: %w", err)
		}
		s.log.Error("admin listener not started: its default address is taken (another kchat process on this machine?); set KCHAT_ADMIN_ADDR to a free host:port to get /metrics and /debug/pprof/", "addr", s.addr, "err", err)
		return nil
	}
	s.ln = ln
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !isLoopback(host) {
		s.log.Warn("admin listener is not on loopback: /metrics and /debug/pprof/ reveal internals; keep the address away from the public network", "addr", s.Addr())
	}
	// No write timeout: a CPU profile streams for as long as it is asked to.
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(ln) }()
	s.log.Info("admin listener: /metrics and /debug/pprof/", "addr", s.Addr())
	return nil
}

// Stop closes the listener and its connections (a profile being taken is
// cut short).
func (s *AdminServer) Stop(context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// isLoopback reports whether host (an IP, or a name) is loopback only.
// An empty host or an unspecified address listens on every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

package runner

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// DebugConfig turns on Go's profiling endpoints, on a listener of their
// own so they are never exposed with the service's API.
type DebugConfig struct {
	// PprofAddr is host:port for /debug/pprof/ (empty: off). Bind it to
	// loopback: profiles reveal internals.
	PprofAddr string `env:"KCHAT_PPROF_ADDR"`
}

// Validate checks the address.
func (c DebugConfig) Validate() error {
	if c.PprofAddr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
		return fmt.Errorf("KCHAT_PPROF_ADDR: %q is not host:port (e.g. 127.0.0.1:6060)", c.PprofAddr)
	}
	return nil
}

// servePprof serves the profiling endpoints on cfg.PprofAddr, if set, for
// the life of the process.
func servePprof(cfg DebugConfig, log *slog.Logger) error {
	if cfg.PprofAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.PprofAddr)
	if err != nil {
		return fmt.Errorf("KCHAT_PPROF_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof listener stopped", "err", err)
		}
	}()
	log.Info("profiling endpoints listening", "addr", ln.Addr().String())
	return nil
}

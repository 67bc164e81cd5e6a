package runner

import (
	"fmt"
	"log/slog"
	"strings"

	"go.uber.org/fx"

	"github.com/kchat/kchat/cmd/internal/config"
)

// Main is every service binary's body: it refuses arguments, loads cfg
// from environ (validating it with validate), builds the logger from the
// configuration's LogConfig, and runs the fx app that options builds, with
// the service's admin listener (KCHAT_ADMIN_ADDR: /metrics, /debug/pprof/),
// until a signal stops it.
func Main[C any](service string, args, environ []string, cfg *C, validate func() error, logConfig func(*C) LogConfig, options func(*slog.Logger) []fx.Option) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: the %s is configured by KCHAT_* variables only (--help lists them)", args, service)
	}
	if err := config.Load(cfg, environ, validate); err != nil {
		return err
	}
	var admin AdminConfig
	if err := config.Load(&admin, environ, func() error { return admin.Validate() }); err != nil {
		return err
	}
	log, err := NewLogger(logConfig(cfg), service)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	WarnReplaced(environ, log)
	app := fx.New(append([]fx.Option{Admin(admin, service)}, options(log)...)...)
	app.Run()
	return app.Err()
}

// WarnReplaced warns about variables kchat no longer reads that environ
// still sets, naming what replaced them: a setting silently ignored would
// leave its operator believing it works.
func WarnReplaced(environ []string, log *slog.Logger) {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "KCHAT_PPROF_ADDR=") {
			log.Warn("KCHAT_PPROF_ADDR is no longer read: /debug/pprof/ and /metrics are on the admin listener, KCHAT_ADMIN_ADDR")
		}
	}
}

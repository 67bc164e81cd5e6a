package runner

import (
	"fmt"
	"log/slog"

	"go.uber.org/fx"

	"github.com/kchat/kchat/cmd/internal/config"
)

// Main is every service binary's body: it refuses arguments, loads cfg
// from environ (validating it with validate), builds the logger from the
// configuration's LogConfig, serves the profiling endpoints when
// KCHAT_PPROF_ADDR asks for them, and runs the fx app that options builds until
// a signal stops it.
func Main[C any](service string, args, environ []string, cfg *C, validate func() error, logConfig func(*C) LogConfig, options func(*slog.Logger) []fx.Option) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: the %s is configured by KCHAT_* variables only", args, service)
	}
	if err := config.Load(cfg, environ, validate); err != nil {
		return err
	}
	var debug DebugConfig
	if err := config.Load(&debug, environ, func() error { return debug.Validate() }); err != nil {
		return err
	}
	log, err := NewLogger(logConfig(cfg), service)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := servePprof(debug, log); err != nil {
		return err
	}
	app := fx.New(options(log)...)
	app.Run()
	return app.Err()
}

// Command producer is kchat's producer service (SPEC §3): it publishes
// messages posted over HTTP to Kafka and answers only after Kafka
// acknowledged them.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/cmd/internal/config"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/cmd/internal/services"
)

// Config is everything the producer reads from the environment.
type Config struct {
	Producer services.ProducerConfig
	Kafka    kafka.Config
	Log      runner.LogConfig
}

// Validate checks every part, naming the variable at fault.
func (c *Config) Validate() error {
	if err := c.Producer.Validate(); err != nil {
		return err
	}
	return c.Kafka.Validate()
}

func main() {
	if err := run(os.Args[1:], os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

func run(args []string, environ []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: the producer is configured by KCHAT_* variables only", args)
	}
	var cfg Config
	if err := config.Load(&cfg, environ, cfg.Validate); err != nil {
		return err
	}
	log, err := runner.NewLogger(cfg.Log, "producer")
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	app := fx.New(options(cfg, log)...)
	app.Run()
	return app.Err()
}

// options is the producer's fx graph.
func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		services.Base(log, cfg.Producer.HTTP.ShutdownTimeout),
		fx.Supply(cfg.Kafka),
		kafka.Module,
		services.Producer(cfg.Producer),
	}
}

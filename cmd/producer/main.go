// Command producer is kchat's producer service (docs/design.md,
// "Producer"): it publishes messages posted over HTTP to Kafka and answers
// only after Kafka acknowledged them.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/cmd/internal/wire"
)

// Config is everything the producer reads from the environment.
type Config struct {
	Producer wire.ProducerConfig
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
	var cfg Config
	return runner.Main("producer", args, environ, &cfg, cfg.Validate,
		func(c *Config) runner.LogConfig { return c.Log },
		func(log *slog.Logger) []fx.Option { return options(cfg, log) })
}

// options is the producer's fx graph.
func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		wire.Base(log, cfg.Producer.HTTP.ShutdownTimeout),
		wire.Kafka(cfg.Kafka),
		wire.Producer(cfg.Producer),
	}
}

// Command producer is kchat's producer service (docs/design.md,
// "Producer"): it publishes messages posted over HTTP to Kafka and answers
// only after Kafka acknowledged them.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/cmd/internal/config"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/cmd/internal/wire"
)

// Config is everything the producer reads from the environment.
type Config struct {
	Producer wire.ProducerConfig
	Kafka    kafka.Config
	Log      runner.LogConfig
	Tracing  tracing.Config
}

// Validate checks every part, naming the variable at fault.
func (c *Config) Validate() error {
	if err := c.Tracing.Validate(); err != nil {
		return err
	}
	if err := c.Producer.Validate(); err != nil {
		return err
	}
	return c.Kafka.Validate()
}

func main() {
	if err := run(os.Args[1:], os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

// about opens the answer to --help.
const about = "producer is kchat's producer service (port 8000): it publishes messages posted over HTTP\n" +
	"to Kafka and answers once Kafka acknowledged them.\n"

// computedDefaults are the defaults --help cannot read from env tags.
var computedDefaults = map[string]string{"KCHAT_KAFKA_BROKERS": "required"}

// run answers -h/--help on out, or runs the service until a signal stops it.
func run(args []string, environ []string, out io.Writer) error {
	var cfg Config
	if config.WantsHelp(args) {
		return runner.Help(out, "producer", about, &cfg, computedDefaults)
	}
	return runner.Main("producer", args, environ, &cfg, cfg.Validate,
		func(c *Config) runner.LogConfig { return c.Log },
		func(log *slog.Logger) []fx.Option { return options(cfg, log) })
}

// options is the producer's fx graph.
func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		wire.Base(log, cfg.Producer.HTTP.ShutdownTimeout),
		wire.Tracing(cfg.Tracing, "producer"),
		wire.Kafka(cfg.Kafka),
		wire.Producer(cfg.Producer),
	}
}

// Command consumer is kchat's consumer service (docs/design.md,
// "Consumer"): any number of HTTP clients take the next unconsumed messages
// of a topic, strictly by committed offsets, from one long-lived group
// consumer per topic.
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

// Config is everything the consumer reads from the environment.
type Config struct {
	Consumer wire.ConsumerConfig
	Kafka    kafka.Config
	Log      runner.LogConfig
	Tracing  tracing.Config
}

// Validate checks every part, naming the variable at fault.
func (c *Config) Validate() error {
	if err := c.Tracing.Validate(); err != nil {
		return err
	}
	if err := c.Consumer.Validate(); err != nil {
		return err
	}
	return c.Kafka.Validate()
}

func main() {
	if err := run(os.Args[1:], os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

// about opens the answer to --help.
const about = "consumer is kchat's consumer service (port 8001): it serves the next unconsumed messages\n" +
	"of a topic over HTTP, strictly by committed offsets.\n"

// computedDefaults are the defaults --help cannot read from env tags.
var computedDefaults = map[string]string{"KCHAT_KAFKA_BROKERS": "required", "KCHAT_RECEIPT_KEY": "required"}

// run answers -h/--help on out, or runs the service until a signal stops it.
func run(args []string, environ []string, out io.Writer) error {
	var cfg Config
	if config.WantsHelp(args) {
		return runner.Help(out, "consumer", about, &cfg, computedDefaults)
	}
	return runner.Main("consumer", args, environ, &cfg, cfg.Validate,
		func(c *Config) runner.LogConfig { return c.Log },
		func(log *slog.Logger) []fx.Option { return options(cfg, log) })
}

// options is the consumer's fx graph.
func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		wire.Base(log, cfg.Consumer.HTTP.ShutdownTimeout),
		wire.Tracing(cfg.Tracing, "consumer"),
		wire.Kafka(cfg.Kafka),
		wire.Censor(cfg.Consumer.Profanity),
		wire.Consumer(cfg.Consumer),
	}
}

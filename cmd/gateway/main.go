// Command gateway is kchat's input API (docs/design.md, "Gateway"): the web
// chat page, WebSocket chat, POST /chat and the session routes. It publishes
// queries (to Kafka, or through the producer service) and reads the answer
// topic as its own reader, so any number of replicas each deliver answers
// to their own sockets.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/cmd/internal/config"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/cmd/internal/wire"
)

// Config is everything the gateway reads from the environment.
type Config struct {
	Gateway wire.GatewayConfig
	Kafka   kafka.Config
	Redis   redis.Config
	Log     runner.LogConfig
	Tracing tracing.Config
}

// Validate checks every part, naming the variable at fault.
func (c *Config) Validate() error {
	if err := c.Tracing.Validate(); err != nil {
		return err
	}
	if err := c.Gateway.Validate(); err != nil {
		return err
	}
	// Replicas must recognise each other's visitors: no key made up here.
	if err := c.Gateway.Auth.RequireCookieKey(); err != nil {
		return err
	}
	if c.Redis.URL != "" {
		if err := c.Redis.Validate(); err != nil {
			return err
		}
	}
	return c.Kafka.Validate()
}

func main() {
	if err := run(os.Args[1:], os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// about opens the answer to --help.
const about = "gateway is kchat's chat front (port 8002): the web page, WebSocket chat and POST /chat.\n"

// computedDefaults are the defaults --help cannot read from env tags.
var computedDefaults = map[string]string{"KCHAT_KAFKA_BROKERS": "required", "KCHAT_ANSWER_KEY": "required", "KCHAT_COOKIE_KEY": "required with KCHAT_AUTH=none"}

// run answers -h/--help on out, or runs the service until a signal stops it.
func run(args []string, environ []string, out io.Writer) error {
	var cfg Config
	if config.WantsHelp(args) {
		return runner.Help(out, "gateway", about, &cfg, computedDefaults)
	}
	return runner.Main("gateway", args, environ, &cfg, cfg.Validate,
		func(c *Config) runner.LogConfig { return c.Log },
		func(log *slog.Logger) []fx.Option { return options(cfg, log) })
}

// options is the gateway's fx graph.
func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		wire.Base(log, cfg.Gateway.HTTP.ShutdownTimeout),
		wire.Tracing(cfg.Tracing, "gateway"),
		wire.Kafka(cfg.Kafka),
		wire.Sessions(cfg.Redis),
		wire.Gateway(cfg.Gateway),
	}
}

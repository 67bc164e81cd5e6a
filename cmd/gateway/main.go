// Command gateway is kchat's input API (SPEC §6): the web chat page,
// WebSocket chat, POST /chat and the session routes. It publishes queries
// to Kafka and reads the answer topic as its own reader, so any number of
// replicas each deliver answers to their own sockets.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/cmd/internal/config"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/cmd/internal/services"
)

// Config is everything the gateway reads from the environment.
type Config struct {
	Gateway services.GatewayConfig
	Kafka   kafka.Config
	Redis   redis.Config
	Log     runner.LogConfig
}

// Validate checks every part, naming the variable at fault.
func (c *Config) Validate() error {
	if err := c.Gateway.Validate(); err != nil {
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
	if err := run(os.Args[1:], os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(args []string, environ []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: the gateway is configured by KCHAT_* variables only", args)
	}
	var cfg Config
	if err := config.Load(&cfg, environ, cfg.Validate); err != nil {
		return err
	}
	log, err := runner.NewLogger(cfg.Log, "gateway")
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	app := fx.New(options(cfg, log)...)
	app.Run()
	return app.Err()
}

// options is the gateway's fx graph.
func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		services.Base(log, cfg.Gateway.HTTP.ShutdownTimeout),
		fx.Supply(cfg.Kafka),
		kafka.Module,
		services.Sessions(cfg.Redis),
		services.Gateway(cfg.Gateway),
	}
}

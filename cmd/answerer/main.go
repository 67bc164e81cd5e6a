// Command answerer is kchat's RAG worker (docs/design.md, "Answerer"): it
// turns queries into prompts (retrieving passages from the knowledge base)
// and prompts into answers (with the configured generator), in Kafka
// transactions, so no prompt or answer is lost or duplicated across
// crashes. Port 8003 serves health and readiness (and, with the external
// generator, POST /answers); metrics are on the admin listener.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/cmd/internal/wire"
)

// Config is everything the answerer reads from the environment.
type Config struct {
	Answerer  wire.AnswererConfig
	Kafka     kafka.Config
	Redis     redis.Config
	Profanity profanity.Config
	Log       runner.LogConfig
}

// Validate checks every part, naming the variable at fault. The instance
// name defaults to the host name.
func (c *Config) Validate() error {
	if c.Answerer.Stage.Instance == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return fmt.Errorf("KCHAT_ANSWERER_INSTANCE is unset and the host name is unknown: set it")
		}
		c.Answerer.Stage.Instance = host
	}
	if err := c.Answerer.Validate(); err != nil {
		return err
	}
	if c.Redis.URL != "" {
		if err := c.Redis.Validate(); err != nil {
			return err
		}
	}
	if err := c.Profanity.Validate(); err != nil {
		return err
	}
	return c.Kafka.Validate()
}

func main() {
	if err := run(os.Args[1:], os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "answerer:", err)
		os.Exit(1)
	}
}

func run(args []string, environ []string) error {
	var cfg Config
	return runner.Main("answerer", args, environ, &cfg, cfg.Validate,
		func(c *Config) runner.LogConfig { return c.Log },
		func(log *slog.Logger) []fx.Option { return options(cfg, log) })
}

// options is the answerer's fx graph.
func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		wire.Base(log, cfg.Answerer.HTTP.ShutdownTimeout),
		wire.Kafka(cfg.Kafka),
		wire.Sessions(cfg.Redis),
		wire.Censor(cfg.Profanity),
		wire.Answerer(cfg.Answerer),
	}
}

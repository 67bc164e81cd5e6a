// Command answerer is kchat's RAG worker (docs/design.md, "Answerer"): it
// turns queries into prompts (retrieving passages from the knowledge base)
// and prompts into answers (with the configured generator), in Kafka
// transactions, so no prompt or answer is lost or duplicated across
// crashes. Port 8003 serves health and readiness (and, with the external
// generator, POST /answers); metrics are on the admin listener.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/cmd/internal/config"
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
	Tracing   tracing.Config
}

// Validate checks every part, naming the variable at fault. The instance
// name defaults to the host name.
func (c *Config) Validate() error {
	if err := c.Tracing.Validate(); err != nil {
		return err
	}
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
	if err := run(os.Args[1:], os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "answerer:", err)
		os.Exit(1)
	}
}

// about opens the answer to --help.
const about = "answerer is kchat's RAG worker (health on port 8003): it turns queries into prompts and\n" +
	"prompts into answers, in Kafka transactions.\n"

// computedDefaults are the defaults --help cannot read from env tags.
var computedDefaults = map[string]string{"KCHAT_KAFKA_BROKERS": "required", "KCHAT_ANSWER_KEY": "required", "KCHAT_ANSWERER_INSTANCE": "the host name"}

// run answers -h/--help on out, or runs the service until a signal stops it.
func run(args []string, environ []string, out io.Writer) error {
	var cfg Config
	if config.WantsHelp(args) {
		return runner.Help(out, "answerer", about, &cfg, computedDefaults)
	}
	return runner.Main("answerer", args, environ, &cfg, cfg.Validate,
		func(c *Config) runner.LogConfig { return c.Log },
		func(log *slog.Logger) []fx.Option { return options(cfg, log) })
}

// options is the answerer's fx graph.
func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		wire.Base(log, cfg.Answerer.HTTP.ShutdownTimeout),
		wire.Tracing(cfg.Tracing, "answerer"),
		wire.Kafka(cfg.Kafka),
		wire.Sessions(cfg.Redis),
		wire.Censor(cfg.Profanity),
		wire.Answerer(cfg.Answerer),
	}
}

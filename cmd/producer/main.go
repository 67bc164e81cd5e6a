// Command producer is kchat's producer service (SPEC §3): it publishes
// messages posted over HTTP to Kafka and answers only after Kafka
// acknowledged them.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/cmd/internal/config"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/ports"
)

// Config is everything the producer reads from the environment.
type Config struct {
	Addr  string `env:"KCHAT_PRODUCER_ADDR" envDefault:":8000"`
	HTTP  httpapi.ServerConfig
	Kafka kafka.Config
	Log   runner.LogConfig
}

// Validate checks every part, naming the variable at fault.
func (c *Config) Validate() error {
	c.HTTP.Addr = c.Addr
	if err := c.HTTP.Validate("KCHAT_PRODUCER_ADDR"); err != nil {
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
	if len(args) == 1 && args[0] == "openapi" {
		spec, err := httpapi.ProducerOpenAPI()
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(spec)
		return err
	}
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q (the only subcommand is openapi)", args)
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
	if err := app.Err(); err != nil {
		return err
	}
	return nil
}

// options is the producer's fx graph.
func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		fx.WithLogger(func() fxevent.Logger { return &fxevent.SlogLogger{Logger: log.With("component", "fx")} }),
		fx.StopTimeout(cfg.HTTP.ShutdownTimeout + 10*time.Second),
		fx.Supply(cfg.HTTP, cfg.Kafka, log),
		httpapi.Module,
		kafka.Module,
		fx.Provide(
			func(p ports.Publisher) *app.SubmitMessage { return &app.SubmitMessage{Publisher: p} },
			func(p ports.Publisher) *app.SubmitBatch { return &app.SubmitBatch{Publisher: p} },
			newServer,
		),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, topics *kafka.TopicAdmin) {
			runner.Hook(lc, sd, log, "kafka-topics", topics)
		}),
		fx.Invoke(func(lc fx.Lifecycle, s *httpapi.Server) { lc.Append(fx.StartStopHook(s.Start, s.Stop)) }),
	}
}

func newServer(cfg httpapi.ServerConfig, reg *prometheus.Registry, topics *kafka.TopicAdmin, p *httpapi.Producer, log *slog.Logger) *httpapi.Server {
	s := httpapi.NewServer(cfg, "kchat producer", reg, []httpapi.Check{{Name: "kafka", Check: topics.Ready}}, log)
	p.Register(s.API())
	return s
}


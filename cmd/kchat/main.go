// Command kchat runs every kchat service in one process and one fx graph
// (producer, consumer, answerer and gateway, on their usual ports;
// docs/design.md, "All-in-one"). Without KCHAT_KAFKA_BROKERS it embeds a
// Kafka-protocol broker (franz-go's kfake) on 127.0.0.1:9092, or on a free
// port when 9092 is taken, so `make run` works on a machine with only Go.
// Without KCHAT_REDIS_URL sessions are kept in memory.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/cmd/internal/config"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/cmd/internal/wire"
	"github.com/kchat/kchat/domain"
)

// Config is everything the all-in-one reads from the environment.
type Config struct {
	Producer wire.ProducerConfig
	Consumer wire.ConsumerConfig
	Answerer wire.AnswererConfig
	Gateway  wire.GatewayConfig
	Redis    redis.Config
	Kafka    kafka.Config
	Log      runner.LogConfig
	Tracing  tracing.Config
	// Admin is the one admin listener of every service in the process.
	Admin runner.AdminConfig

	randomAnswerKey  bool // KCHAT_ANSWER_KEY was unset: Validate made one
	randomReceiptKey bool // KCHAT_RECEIPT_KEY was unset: Validate made one
}

// Validate checks every part; Kafka brokers are optional here.
func (c *Config) Validate() error {
	if err := c.Tracing.Validate(); err != nil {
		return err
	}
	if err := c.Producer.Validate(); err != nil {
		return err
	}
	if c.Consumer.Queue.ReceiptKey == "" {
		// One consumer signs and checks its receipts: a key of its own will do.
		c.Consumer.Queue.ReceiptKey, c.randomReceiptKey = wire.RandomKey(), true
	}
	if err := c.Consumer.Validate(); err != nil {
		return err
	}
	if c.Answerer.Stage.Instance == "" {
		c.Answerer.Stage.Instance = "kchat"
	}
	if c.Answerer.AnswerKey == "" {
		// One process signs and checks answers: a key of its own will do.
		c.Answerer.AnswerKey, c.randomAnswerKey = wire.RandomKey(), true
		c.Gateway.AnswerKey = c.Answerer.AnswerKey
	}
	if err := c.Answerer.Validate(); err != nil {
		return err
	}
	if err := c.Gateway.Validate(); err != nil {
		return err
	}
	if c.Redis.URL != "" {
		if err := c.Redis.Validate(); err != nil {
			return err
		}
	}
	if err := c.Admin.Validate(); err != nil {
		return err
	}
	if len(c.Kafka.Brokers) == 0 {
		return nil // embedded broker; checked again once it listens
	}
	return c.Kafka.Validate()
}

// embeddedPort is where the embedded broker listens when the port is free:
// Kafka's usual port, where Kafka tools look first.
const embeddedPort = 9092

func main() {
	if err := run(os.Args[1:], os.Environ(), os.Stdout, embeddedPort); err != nil {
		fmt.Fprintln(os.Stderr, "kchat:", err)
		os.Exit(1)
	}
}

// run is the all-in-one: brokerPort is where an embedded broker should
// listen (tests choose their own; CI's real Kafka holds 9092).
func run(args, environ []string, out io.Writer, brokerPort int) error {
	var cfg Config
	if config.WantsHelp(args) {
		return usage(out)
	}
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: kchat is configured by KCHAT_* variables only (--help lists them)", args)
	}
	if err := config.Load(&cfg, environ, cfg.Validate); err != nil {
		return err
	}
	log, err := runner.NewLogger(cfg.Log, "kchat")
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	runner.WarnReplaced(environ, log)
	if cfg.randomAnswerKey {
		log.Info("KCHAT_ANSWER_KEY is unset: answers are signed with a random key made for this process",
			"key_id", domain.KeyID([]byte(cfg.Answerer.AnswerKey)))
	}
	if cfg.randomReceiptKey {
		log.Info("KCHAT_RECEIPT_KEY is unset: consumer receipts are signed with a random key made for this process",
			"key_id", domain.KeyID([]byte(cfg.Consumer.Queue.ReceiptKey)))
	}
	embedded := len(cfg.Kafka.Brokers) == 0
	stop, err := useEmbeddedBroker(&cfg, log, brokerPort)
	if err != nil {
		return err
	}
	defer stop()
	var s servers
	app := fx.New(append(options(cfg, log), fx.Populate(&s.producer, &s.consumer, &s.answerer, &s.gateway, &s.admin))...)
	if err := app.Err(); err != nil {
		return err
	}
	return serve(app, func(ctx context.Context) { printBanner(ctx, out, cfg, s, embedded) })
}

// serve starts app, prints the banner, and runs until SIGINT or SIGTERM
// (or a component fails), then stops app. A clean stop after a signal is a
// success: Ctrl-C ends `make run` without an error.
func serve(app *fx.App, banner func(context.Context)) error {
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	done := app.Wait()
	banner(startCtx)
	sig := <-done
	stopCtx, cancel := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if sig.ExitCode != 0 {
		return fmt.Errorf("stopped after a component failed (see the log above)")
	}
	return nil
}

// useEmbeddedBroker starts an in-memory Kafka-protocol broker when
// KCHAT_KAFKA_BROKERS is unset and points cfg at it; stop closes it.
func useEmbeddedBroker(cfg *Config, log *slog.Logger, port int) (stop func(), err error) {
	if len(cfg.Kafka.Brokers) > 0 {
		return func() {}, nil
	}
	cluster, err := embeddedBroker(port)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	if err := cfg.Kafka.Validate(); err != nil {
		cluster.Close()
		return nil, fmt.Errorf("configuration: %w", err)
	}
	log.Info("KCHAT_KAFKA_BROKERS is unset: using an embedded in-memory Kafka broker (messages are lost on exit)", "brokers", cfg.Kafka.Brokers)
	return cluster.Close, nil
}

// embeddedBroker starts franz-go's kfake on 127.0.0.1:port, or on a free
// port when that one is taken (by a real broker from make services-up,
// say).
func embeddedBroker(port int) (*kfake.Cluster, error) {
	if c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port)); err == nil {
		return c, nil
	}
	return kfake.NewCluster(kfake.NumBrokers(1))
}

func options(cfg Config, log *slog.Logger) []fx.Option {
	return []fx.Option{
		runner.Admin(cfg.Admin, "kchat"),
		wire.Base(log, cfg.Producer.HTTP.ShutdownTimeout),
		wire.Tracing(cfg.Tracing, "kchat"),
		wire.Kafka(cfg.Kafka),
		wire.Producer(cfg.Producer),
		wire.Censor(cfg.Consumer.Profanity),
		wire.Consumer(cfg.Consumer),
		wire.Sessions(cfg.Redis),
		wire.Answerer(cfg.Answerer),
		wire.Gateway(cfg.Gateway),
	}
}

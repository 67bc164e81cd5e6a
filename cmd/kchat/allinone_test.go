package main

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/restclient"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/cmd/internal/wire"
)

// allInOneConfig is the all-in-one on brokers under prefix, every service
// on a loopback port of its own, the gateway in auth mode (token mode
// knows alice-token and bob-token; header mode trusts loopback).
func allInOneConfig(t *testing.T, brokers []string, prefix, mode string) Config {
	t.Helper()
	cfg := Config{Kafka: kafka.DefaultConfig()}
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix = brokers, prefix
	cfg.Producer.HTTP = httpapi.ServerConfig{Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), ShutdownTimeout: time.Second}
	cfg.Consumer = consumerConfig()
	cfg.Consumer.HTTP.Addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.Consumer.Queue.Group = prefix + "kchat-consumer"
	cfg.Answerer, cfg.Redis, cfg.Gateway = answererConfig(), redis.DefaultConfig(), gatewayConfig()
	cfg.Answerer.Stage.Group = prefix + "kchat-answerer"
	cfg.Admin.Addr = "127.0.0.1:0"
	cfg.Gateway.REST = restclient.DefaultConfig()
	cfg.Gateway.REST.ProducerURL, cfg.Gateway.REST.ConsumerURL = "http://"+cfg.Producer.HTTP.Addr, "http://"+cfg.Consumer.HTTP.Addr
	cfg.Gateway.AddrLimit = wire.AddrLimits{MaxConns: 1000, Rate: 1000, Burst: 1000}
	cfg.Gateway.Auth = auth.Config{Mode: mode, CookieKey: "kchat-test-cookie-key-0123456789abcdef"}
	switch mode {
	case auth.ModeToken:
		cfg.Gateway.Auth.Tokens = []string{"alice-token:alice", "bob-token:bob"}
	case auth.ModeHeader:
		cfg.Gateway.Auth.TrustedProxies = []string{"127.0.0.1"}
	}
	return cfg
}

// allInOne is a running all-in-one: its servers, and each one's base URL
// by name (producer, consumer, answerer, gateway, admin).
type allInOne struct {
	producer wire.ProducerServer
	consumer wire.ConsumerServer
	answerer wire.AnswererServer
	gateway  wire.GatewayServer
	admin    *runner.AdminServer
	base     map[string]string
}

// startAllInOne starts the all-in-one with cfg, stopped when the test ends.
func startAllInOne(t *testing.T, cfg Config) *allInOne {
	t.Helper()
	return startAllInOneWith(t, cfg)
}

// startAllInOneWith is startAllInOne with extra options (a decorator).
func startAllInOneWith(t *testing.T, cfg Config, extra ...fx.Option) *allInOne {
	t.Helper()
	r := &allInOne{}
	opts := append(options(cfg, slog.New(slog.DiscardHandler)), extra...)
	app := fx.New(append(opts, fx.Populate(&r.producer, &r.consumer, &r.answerer, &r.gateway, &r.admin))...)
	if err := app.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	r.base = map[string]string{
		"producer": "http://" + r.producer.Addr(), "consumer": "http://" + r.consumer.Addr(), "answerer": "http://" + r.answerer.Addr(),
		"gateway": "http://" + r.gateway.Addr(), "admin": "http://" + r.admin.Addr(),
	}
	return r
}

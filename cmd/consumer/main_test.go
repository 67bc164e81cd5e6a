package main

import (
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/cmd/internal/wire"
)

func TestValidateApp(t *testing.T) {
	cfg := Config{Kafka: kafka.DefaultConfig()}
	cfg.Kafka.Brokers = []string{"127.0.0.1:9092"}
	cfg.Consumer = wire.ConsumerConfig{
		HTTP: httpapi.ServerConfig{Addr: ":0"}, Queue: kafka.DefaultQueueConfig(), Profanity: profanity.DefaultConfig(),
	}
	if err := fx.ValidateApp(options(cfg, slog.New(slog.DiscardHandler))...); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	base := []string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092"}
	tests := []struct {
		env     []string
		wantVar string
	}{
		{nil, "KCHAT_KAFKA_BROKERS"},
		{append(base, "KCHAT_CONSUMER_ADDR=8001"), "KCHAT_CONSUMER_ADDR"},
		{append(base, "KCHAT_CONSUMER_LEASE=forever"), "KCHAT_CONSUMER_LEASE"},
		{append(base, "KCHAT_CONSUMER_LEASE=0s"), "KCHAT_CONSUMER_LEASE"},
		{append(base, "KCHAT_CONSUMER_PARTITION_BUFFER=0"), "KCHAT_CONSUMER_PARTITION_BUFFER"},
		{append(base, "KCHAT_CONSUMER_SESSION_TIMEOUT=1s"), "KCHAT_CONSUMER_SESSION_TIMEOUT"},
		{append(base, "KCHAT_PROFANITY_ALLOW=naïve"), "KCHAT_PROFANITY_ALLOW"},
		{append(base, "KCHAT_PROFANITY_FILTER=maybe"), "KCHAT_PROFANITY_FILTER"},
	}
	for _, tt := range tests {
		err := run(nil, tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
			t.Errorf("run with %v = %v, want an error naming %s", tt.env, err, tt.wantVar)
		}
	}
}

package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/cmd/internal/config"
	"github.com/kchat/kchat/cmd/internal/wire"
	"github.com/kchat/kchat/domain"
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
	base := []string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_RECEIPT_KEY=" + testReceiptKey}
	tests := []struct {
		env     []string
		wantVar string
	}{
		{[]string{"KCHAT_RECEIPT_KEY=" + testReceiptKey}, "KCHAT_KAFKA_BROKERS"},
		{[]string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092"}, "KCHAT_RECEIPT_KEY"},
		{[]string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_RECEIPT_KEY=0123456789abcdef0123456789abcde"}, "KCHAT_RECEIPT_KEY"},
		{append(base, "KCHAT_CONSUMER_ADDR=8001"), "KCHAT_CONSUMER_ADDR"},
		{append(base, "KCHAT_CONSUMER_LEASE=forever"), "KCHAT_CONSUMER_LEASE"},
		{append(base, "KCHAT_CONSUMER_LEASE=0s"), "KCHAT_CONSUMER_LEASE"},
		{append(base, "KCHAT_CONSUMER_PARTITION_BUFFER=0"), "KCHAT_CONSUMER_PARTITION_BUFFER"},
		{append(base, "KCHAT_CONSUMER_SESSION_TIMEOUT=1s"), "KCHAT_CONSUMER_SESSION_TIMEOUT"},
		{append(base, "KCHAT_CONSUMER_GROUPS=query"), "KCHAT_CONSUMER_GROUPS"},
		{append(base, "KCHAT_CONSUMER_GROUPS=query=query-fetcher,queries=x"), "KCHAT_CONSUMER_GROUPS"},
		{append(base, "KCHAT_CONSUMER_GROUPS=query="), "KCHAT_CONSUMER_GROUPS"},
		{append(base, "KCHAT_PROFANITY_ALLOW=naïve"), "KCHAT_PROFANITY_ALLOW"},
		{append(base, "KCHAT_PROFANITY_FILTER=maybe"), "KCHAT_PROFANITY_FILTER"},
	}
	for _, tt := range tests {
		err := run(nil, tt.env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
			t.Errorf("run with %v = %v, want an error naming %s", tt.env, err, tt.wantVar)
		}
	}
}

// testReceiptKey is the receipt key of the consumer processes the tests
// start: replicas of a group must share it.
const testReceiptKey = "consumer-test-receipt-key-0123456789abcdef"

// TestAReceiptKeyIsRequired starts the consumer without KCHAT_RECEIPT_KEY:
// it must refuse, naming the variable and how to make a key, rather than
// sign with a key of its own that its other replicas do not share.
func TestAReceiptKeyIsRequired(t *testing.T) {
	err := run(nil, []string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "KCHAT_RECEIPT_KEY") || !strings.Contains(err.Error(), "openssl rand -hex 32") {
		t.Fatalf("run without a receipt key = %v, want an error naming KCHAT_RECEIPT_KEY and how to make one", err)
	}
	short := "0123456789abcdef0123456789abcde"
	err = run(nil, []string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_RECEIPT_KEY=" + short}, io.Discard)
	if err == nil || strings.Contains(err.Error(), short) {
		t.Fatalf("run with a 31-byte key = %v, want an error that does not echo the key", err)
	}
}

// TestConsumerGroupsFromTheEnvironment: KCHAT_CONSUMER_GROUPS names the
// old services' groups per type; the types it leaves out keep
// KCHAT_CONSUMER_GROUP-<type>.
func TestConsumerGroupsFromTheEnvironment(t *testing.T) {
	var cfg Config
	err := config.Load(&cfg, []string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_RECEIPT_KEY=" + testReceiptKey,
		"KCHAT_CONSUMER_GROUPS=query=query-fetcher,prompt=prompt-fetcher"}, cfg.Validate)
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.Consumer.Queue
	for typ, want := range map[string]string{"query": "query-fetcher", "prompt": "prompt-fetcher", "answer": "kchat-consumer-answer"} {
		if got := q.GroupOf(domain.MessageType(typ)); got != want {
			t.Errorf("group of %s = %q, want %q", typ, got, want)
		}
	}
}

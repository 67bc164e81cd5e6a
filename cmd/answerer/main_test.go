package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/cmd/internal/wire"
)

func testConfig(brokers []string, prefix string) Config {
	cfg := Config{Kafka: kafka.DefaultConfig(), Redis: redis.DefaultConfig(), Profanity: profanity.DefaultConfig()}
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix = brokers, prefix
	cfg.Answerer = wire.AnswererConfig{
		HTTP:  httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second},
		Stage: kafka.StageConfig{Group: prefix + "answerer", Instance: "test", RetryBackoff: 50 * time.Millisecond, SessionTimeout: 6 * time.Second, TransactionTimeout: 6 * time.Second, Concurrency: 4},
		RAG:   rag.DefaultConfig(), LLM: llm.DefaultConfig(), Attempts: 2, Backoff: 10 * time.Millisecond,
		AnswerKey: testAnswerKey,
	}
	return cfg
}

// testAnswerKey is the answer key of the test answerers (and gateways).
const testAnswerKey = "kchat-test-answer-key-0123456789abcdef"

func TestValidateApp(t *testing.T) {
	for _, gen := range []string{"extractive", "external"} {
		cfg := testConfig([]string{"127.0.0.1:9092"}, "")
		cfg.Answerer.LLM.Generator = gen
		if err := fx.ValidateApp(options(cfg, slog.New(slog.DiscardHandler))...); err != nil {
			t.Errorf("%s: %v", gen, err)
		}
	}
	cfg := testConfig([]string{"127.0.0.1:9092"}, "")
	cfg.Redis.URL = "redis://127.0.0.1:6379/0"
	if err := fx.ValidateApp(options(cfg, slog.New(slog.DiscardHandler))...); err != nil {
		t.Errorf("with redis: %v", err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	base := []string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_ANSWER_KEY=" + testAnswerKey}
	tests := []struct {
		env     []string
		wantVar string
	}{
		{base[1:], "KCHAT_KAFKA_BROKERS"},
		{nil, "KCHAT_ANSWER_KEY"}, // checked before the brokers: an answerer that took it would stop anyway
		{[]string{"KCHAT_ANSWER_KEY=short"}, "KCHAT_ANSWER_KEY"},
		{append(base, "KCHAT_ANSWERER_ADDR=8003"), "KCHAT_ANSWERER_ADDR"},
		{append(base, "KCHAT_GENERATOR=magic"), "KCHAT_GENERATOR"},
		{append(base, "KCHAT_GENERATOR=openai"), "KCHAT_LLM_"},
		{append(base, "KCHAT_LLM_ATTEMPTS=0"), "KCHAT_LLM_ATTEMPTS"},
		{append(base, "KCHAT_REDIS_URL=mysql://x"), "KCHAT_REDIS_URL"},
		{append(base, "KCHAT_KB_DIR=/does/not/exist"), "KCHAT_KB_DIR"},
		{append(base, "KCHAT_ANSWERER_SESSION_TIMEOUT=500ms"), "KCHAT_ANSWERER_SESSION_TIMEOUT"},
		{append(base, "KCHAT_ANSWERER_TRANSACTION_TIMEOUT=0s"), "KCHAT_ANSWERER_TRANSACTION_TIMEOUT"},
		{append(base, "KCHAT_ANSWERER_TRANSACTION_TIMEOUT=1h"), "KCHAT_ANSWERER_TRANSACTION_TIMEOUT"},
	}
	for _, tt := range tests {
		err := run(nil, tt.env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
			t.Errorf("run with %v = %v, want an error naming %s", tt.env, err, tt.wantVar)
		}
	}
}

// startApp runs the answerer's graph in-process.
func startApp(t *testing.T, cfg Config) {
	t.Helper()
	app := fx.New(options(cfg, slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

// testLog sends the app's warnings and errors to the test's output, so a
// failing test shows what the answerer saw.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

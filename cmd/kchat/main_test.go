package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/ws"
	"github.com/kchat/kchat/cmd/internal/services"
	"github.com/kchat/kchat/internal/kafkatest"
)

func TestValidateApp(t *testing.T) {
	cfg := Config{Kafka: kafka.DefaultConfig()}
	cfg.Kafka.Brokers = []string{"127.0.0.1:9092"}
	cfg.Producer.HTTP = httpapi.ServerConfig{Addr: ":0", ShutdownTimeout: time.Second}
	cfg.Consumer = consumerConfig()
	cfg.Answerer, cfg.Redis, cfg.Gateway = answererConfig(), redis.DefaultConfig(), gatewayConfig()
	if err := fx.ValidateApp(options(cfg, slog.New(slog.DiscardHandler), io.Discard)...); err != nil {
		t.Fatal(err)
	}
}

// TestAllInOneServesTheProducer is what `make run` gives a new user: the
// producer answering 202 on a broker inside the process, the consumer
// handing the query out, and the answerer answering it.
func TestAllInOneServesTheProducer(t *testing.T) {
	cfg := Config{Kafka: kafka.DefaultConfig()}
	cfg.Kafka.Brokers = kafkatest.Fake(t)
	cfg.Producer.HTTP = httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}
	cfg.Consumer = consumerConfig()
	cfg.Answerer, cfg.Redis, cfg.Gateway = answererConfig(), redis.DefaultConfig(), gatewayConfig()
	var banner strings.Builder
	var srv services.ProducerServer
	var cons services.ConsumerServer
	app := fx.New(append(options(cfg, slog.New(slog.DiscardHandler), &banner), fx.Populate(&srv, &cons))...)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := app.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if !strings.Contains(banner.String(), "http://127.0.0.1:") {
		t.Errorf("banner %q does not give the producer's URL", banner.String())
	}
	base := "http://" + srv.Addr()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Post(base+"/messages", "application/json",
			strings.NewReader(`{"session_id":"s","user_id":"u","type":"query","message":"hello"}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 202 from the all-in-one producer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// franz-go's client metrics (kprom) are on /metrics. Its hook may run
	// just after the produce was acknowledged: look again for a moment.
	var body []byte
	for range 50 {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "kchat_produce_bytes_total") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(body), "kchat_produce_bytes_total") {
		t.Errorf("/metrics lacks franz-go's produce metrics:\n%.2000s", body)
	}
	// The consumer in the same process hands the message out.
	got, err := http.Get("http://" + cons.Addr() + "/messages?type=query&wait=10s")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	raw, _ := io.ReadAll(got.Body)
	if got.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"count":1`) || !strings.Contains(string(raw), "hello") {
		t.Fatalf("consumer: %d %s", got.StatusCode, raw)
	}
	// The answerer answers it: the answer shows up on the consumer.
	ans, err := http.Get("http://" + cons.Addr() + "/messages?type=answer&wait=20s")
	if err != nil {
		t.Fatal(err)
	}
	defer ans.Body.Close()
	raw, _ = io.ReadAll(ans.Body)
	if ans.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"count":1`) || !strings.Contains(string(raw), `"reply_to"`) {
		t.Fatalf("answer: %d %s", ans.StatusCode, raw)
	}
}

func gatewayConfig() services.GatewayConfig {
	return services.GatewayConfig{
		HTTP:        httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		ChatTimeout: 20 * time.Second, WS: ws.DefaultConfig(), Auth: auth.DefaultConfig(),
	}
}

func answererConfig() services.AnswererConfig {
	return services.AnswererConfig{
		HTTP:  httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Stage: kafka.StageConfig{Group: "kchat-answerer", Instance: "test", RetryBackoff: 50 * time.Millisecond, SessionTimeout: 10 * time.Second, Concurrency: 4},
		RAG:   rag.DefaultConfig(), LLM: llm.DefaultConfig(), Attempts: 2, Backoff: 10 * time.Millisecond,
	}
}

func consumerConfig() services.ConsumerConfig {
	return services.ConsumerConfig{
		HTTP: httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}, Lease: 30 * time.Second,
		Queue: kafka.DefaultQueueConfig(), Profanity: profanity.DefaultConfig(),
	}
}

func TestURL(t *testing.T) {
	for give, want := range map[string]string{":8000": "http://localhost:8000", "0.0.0.0:8001": "http://localhost:8001", "127.0.0.1:9": "http://127.0.0.1:9"} {
		if got := url(give); got != want {
			t.Errorf("url(%q) = %q, want %q", give, got, want)
		}
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	var out strings.Builder
	if err := usage(&out); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"KCHAT_KAFKA_BROKERS", "KCHAT_REDIS_URL", "KCHAT_GATEWAY_ADDR", "KCHAT_GENERATOR", "KCHAT_CONSUMER_LEASE", "KCHAT_AUTH", "KCHAT_KB_DIR"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("--help does not list %s", v)
		}
	}
}

func TestEmbeddedBrokerFallsBackWhen9092IsTaken(t *testing.T) {
	c, err := embeddedBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := embeddedBroker() // 9092 is taken now (by c, or a real broker)
	if err != nil {
		t.Fatalf("second embedded broker: %v", err)
	}
	defer d.Close()
	if d.ListenAddrs()[0] == c.ListenAddrs()[0] {
		t.Fatalf("both brokers on %s", d.ListenAddrs()[0])
	}
	if !strings.HasPrefix(d.ListenAddrs()[0], "127.0.0.1:") {
		t.Fatalf("embedded broker on %s, want loopback", d.ListenAddrs()[0])
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
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
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/adapters/redis"
	"github.com/kchat/kchat/adapters/ws"
	"github.com/kchat/kchat/cmd/internal/config"
	"github.com/kchat/kchat/cmd/internal/wire"
	"github.com/kchat/kchat/internal/kafkatest"
)

func TestValidateApp(t *testing.T) {
	cfg := Config{Kafka: kafka.DefaultConfig()}
	cfg.Kafka.Brokers = []string{"127.0.0.1:9092"}
	cfg.Producer.HTTP = httpapi.ServerConfig{Addr: ":0", ShutdownTimeout: time.Second}
	cfg.Consumer = consumerConfig()
	cfg.Answerer, cfg.Redis, cfg.Gateway = answererConfig(), redis.DefaultConfig(), gatewayConfig()
	cfg.Admin.Addr = "127.0.0.1:0"
	if err := fx.ValidateApp(options(cfg, slog.New(slog.DiscardHandler))...); err != nil {
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
	cfg.Admin.Addr = "127.0.0.1:0"
	var s servers
	app := fx.New(append(options(cfg, slog.New(slog.DiscardHandler)), fx.Populate(&s.producer, &s.consumer, &s.answerer, &s.gateway, &s.admin))...)
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
	srv, cons, admin := s.producer, s.consumer, s.admin
	var banner strings.Builder
	printBanner(t.Context(), &banner, cfg, s, false)
	if !strings.Contains(banner.String(), "http://"+srv.Addr()+"/docs") || !strings.Contains(banner.String(), "metrics    http://"+admin.Addr()+"/metrics") ||
		!strings.Contains(banner.String(), ": answers") {
		t.Errorf("banner %q does not give the producer's and the admin listener's URLs, or Kafka's state", banner.String())
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
	// franz-go's client metrics (kprom) are on the one admin listener's
	// /metrics, for every service of the process, and on no service's API
	// (issue 13, item 14). Its hook may run just after the produce was
	// acknowledged: look again for a moment.
	for _, api := range []string{base, "http://" + cons.Addr()} {
		resp, err := http.Get(api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s/metrics = %d, want 404: metrics are on the admin listener", api, resp.StatusCode)
		}
	}
	var body []byte
	for range 50 {
		resp, err := http.Get("http://" + admin.Addr() + "/metrics")
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

func gatewayConfig() wire.GatewayConfig {
	return wire.GatewayConfig{
		HTTP:        httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		ChatTimeout: 20 * time.Second, WS: ws.DefaultConfig(), UserLimit: ratelimit.DefaultConfig(), Auth: auth.DefaultConfig(),
		AnswerKey: testAnswerKey,
	}
}

// testAnswerKey is the answer key both services of a test graph share.
const testAnswerKey = "kchat-test-answer-key-0123456789abcdef"

func answererConfig() wire.AnswererConfig {
	return wire.AnswererConfig{
		HTTP:  httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Stage: kafka.StageConfig{Group: "kchat-answerer", Instance: "test", RetryBackoff: 50 * time.Millisecond, SessionTimeout: 10 * time.Second, Concurrency: 4},
		RAG:   rag.DefaultConfig(), LLM: llm.DefaultConfig(), Attempts: 2, Backoff: 10 * time.Millisecond,
		AnswerKey: testAnswerKey,
	}
}

func consumerConfig() wire.ConsumerConfig {
	q := kafka.DefaultQueueConfig()
	q.ReceiptKey = "kchat-test-receipt-key-0123456789abcdef"
	return wire.ConsumerConfig{
		HTTP: httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second}, Lease: 30 * time.Second,
		Queue: q, Profanity: profanity.DefaultConfig(),
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

// The all-in-one embeds its broker on the port it is given when that port
// is free (9092 in make run), on another loopback port when it is taken,
// and not at all when KCHAT_KAFKA_BROKERS names one.
func TestEmbeddedBrokerPort(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	free := freePort(t)
	cfg := Config{Kafka: kafka.DefaultConfig()}
	stop, err := useEmbeddedBroker(&cfg, log, free)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if want := "127.0.0.1:" + strconv.Itoa(free); len(cfg.Kafka.Brokers) != 1 || cfg.Kafka.Brokers[0] != want {
		t.Fatalf("embedded broker on %v, want %s (the free port it was given)", cfg.Kafka.Brokers, want)
	}

	// That port is taken now: the next one falls back to a free port.
	second := Config{Kafka: kafka.DefaultConfig()}
	stop2, err := useEmbeddedBroker(&second, log, free)
	if err != nil {
		t.Fatalf("second embedded broker: %v", err)
	}
	defer stop2()
	if len(second.Kafka.Brokers) != 1 || second.Kafka.Brokers[0] == cfg.Kafka.Brokers[0] || !strings.HasPrefix(second.Kafka.Brokers[0], "127.0.0.1:") {
		t.Fatalf("with its port taken the broker is on %v, want another loopback port than %s", second.Kafka.Brokers, cfg.Kafka.Brokers[0])
	}

	real := Config{Kafka: kafka.Config{Brokers: []string{"10.0.0.1:9092"}}}
	stop3, err := useEmbeddedBroker(&real, log, freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	stop3()
	if len(real.Kafka.Brokers) != 1 || real.Kafka.Brokers[0] != "10.0.0.1:9092" {
		t.Fatalf("KCHAT_KAFKA_BROKERS was replaced: %v", real.Kafka.Brokers)
	}
}

// The default is Kafka's usual port.
func TestEmbeddedPortIs9092(t *testing.T) {
	if embeddedPort != 9092 {
		t.Fatalf("embeddedPort = %d; the README promises 127.0.0.1:9092", embeddedPort)
	}
}

// freePort returns a loopback port nothing listens on (a moment ago).
func freePort(t *testing.T) int {
	t.Helper()
	// Below Linux's ephemeral range (32768–60999), where the kernel puts
	// every port asked for with :0 and the source port of every outgoing
	// connection: a port taken from there and released was, in a CI run,
	// taken by another test before the process given it could listen.
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			_ = ln.Close()
			return port
		}
	}
	t.Fatal("no free port in 20000–31999")
	return 0
}

// TestAnUnsetReceiptKeyIsRandomPerProcess: the all-in-one is one process,
// so without KCHAT_RECEIPT_KEY it makes a key of its own, a new one each
// time; a key that is set is kept.
func TestAnUnsetReceiptKeyIsRandomPerProcess(t *testing.T) {
	keys := map[string]bool{}
	for range 2 {
		var cfg Config
		if err := config.Load(&cfg, nil, cfg.Validate); err != nil {
			t.Fatal(err)
		}
		k := cfg.Consumer.Queue.ReceiptKey
		if !cfg.randomReceiptKey || len(k) < 32 || keys[k] {
			t.Fatalf("unset KCHAT_RECEIPT_KEY became %d bytes (random %v, seen before %v); want a new random key", len(k), cfg.randomReceiptKey, keys[k])
		}
		keys[k] = true
	}
	var cfg Config
	const set = "a-receipt-key-set-by-the-operator-0123"
	if err := config.Load(&cfg, []string{"KCHAT_RECEIPT_KEY=" + set}, cfg.Validate); err != nil || cfg.randomReceiptKey || cfg.Consumer.Queue.ReceiptKey != set {
		t.Fatalf("a set KCHAT_RECEIPT_KEY was not kept: %v", err)
	}
}

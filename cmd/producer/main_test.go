package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/cmd/internal/wire"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func testConfig(brokers []string, prefix string) Config {
	cfg := Config{Kafka: kafka.DefaultConfig()}
	cfg.Producer.HTTP = httpapi.ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second}
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix = brokers, prefix
	return cfg
}

func TestValidateApp(t *testing.T) {
	if err := fx.ValidateApp(options(testConfig([]string{"127.0.0.1:9092"}, ""), slog.New(slog.DiscardHandler))...); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		environ []string
		wantVar string
	}{
		{[]string{}, "KCHAT_KAFKA_BROKERS"},
		{[]string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_TOPIC_PARTITIONS=many"}, "KCHAT_TOPIC_PARTITIONS"},
		{[]string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_KAFKA_DELIVERY_TIMEOUT=soon"}, "KCHAT_KAFKA_DELIVERY_TIMEOUT"},
		{[]string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_PRODUCER_ADDR=8000"}, "KCHAT_PRODUCER_ADDR"},
		{[]string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_LOG_LEVEL=loud"}, "KCHAT_LOG_LEVEL"},
		{[]string{"KCHAT_KAFKA_BROKERS=127.0.0.1:9092", "KCHAT_SHUTDOWN_TIMEOUT=0s"}, "KCHAT_SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		err := run(nil, tt.environ, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
			t.Errorf("run with %v = %v, want an error naming %s", tt.environ, err, tt.wantVar)
		}
	}
}

func TestOpenAPIHasTheSeedRoute(t *testing.T) {
	spec, err := httpapi.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(spec, []byte("operationId: sendMessage")) {
		t.Fatalf("spec lacks the seed's route:\n%s", spec)
	}
}

// startApp runs the producer's fx graph in-process and returns its base URL.
func startApp(t *testing.T, cfg Config) string {
	t.Helper()
	var srv wire.ProducerServer
	app := fx.New(append(options(cfg, slog.New(slog.DiscardHandler)), fx.Populate(&srv))...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
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
	return "http://" + srv.Addr()
}

type posted struct {
	status     int
	retryAfter string
	body       map[string]any
}

func post(t *testing.T, url, body string) posted {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	p := posted{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	_ = json.Unmarshal(raw, &p.body)
	return p
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, cond func() bool, timeout time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestKafkaDownAtStartup(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	cfg := testConfig([]string{fmt.Sprintf("127.0.0.1:%d", port)}, "")
	cfg.Kafka.DeliveryTimeout = 2 * time.Second
	url := startApp(t, cfg) // starts although no broker answers

	if got := status(t, url+"/healthz"); got != http.StatusOK {
		t.Fatalf("healthz = %d while Kafka is down, want 200", got)
	}
	if got := status(t, url+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("readyz = %d while Kafka is down, want 503", got)
	}
	body := `{"session_id":"s","user_id":"u","type":"query","message":"anyone there?"}`
	start := time.Now()
	p := post(t, url+"/messages", body)
	took := time.Since(start)
	if p.status != http.StatusServiceUnavailable || p.retryAfter == "" {
		t.Fatalf("POST while Kafka is down: %d Retry-After %q, want 503 with Retry-After", p.status, p.retryAfter)
	}
	if took > cfg.Kafka.DeliveryTimeout+500*time.Millisecond {
		t.Fatalf("503 took %s, want within the delivery timeout %s", took, cfg.Kafka.DeliveryTimeout)
	}

	brokers := kafkatest.Fake(t, kfake.Ports(port)) // the broker comes up
	waitFor(t, func() bool { return status(t, url+"/readyz") == http.StatusOK }, 30*time.Second, "readyz to turn 200")
	p = post(t, url+"/messages", body)
	if p.status != http.StatusAccepted {
		t.Fatalf("POST after the broker came up: %d %v", p.status, p.body)
	}
	recs := kafkatest.ReadAll(t, brokers, "query", 1, 10*time.Second)
	if !bytes.Contains(recs[len(recs)-1].Value, []byte(p.body["message_id"].(string))) {
		t.Fatalf("the accepted message is not in the topic")
	}
}

func TestIntegrationProducerEndToEnd(t *testing.T) {
	prefix := testenv.Prefix("it-producer")
	brokers := kafkatest.Real(t, prefix)
	url := startApp(t, testConfig(brokers, prefix))
	waitFor(t, func() bool { return status(t, url+"/readyz") == http.StatusOK }, 30*time.Second, "readyz")

	for _, typ := range []string{"query", "prompt", "answer"} {
		reply := ""
		if typ != "query" {
			reply = `,"reply_to":"q-` + typ + `"`
		}
		p := post(t, url+"/messages", fmt.Sprintf(`{"session_id":"sess-%s","user_id":"alice","type":%q,"message":"hello %s"%s}`, typ, typ, typ, reply))
		if p.status != http.StatusAccepted {
			t.Fatalf("%s: %d %v", typ, p.status, p.body)
		}
		if p.body["topic"] != prefix+typ {
			t.Fatalf("%s: topic %v", typ, p.body["topic"])
		}
		recs := kafkatest.ReadAll(t, brokers, prefix+typ, 1, 20*time.Second)
		rec := recs[0]
		if rec.Partition != int32(p.body["partition"].(float64)) || rec.Offset != int64(p.body["offset"].(float64)) {
			t.Fatalf("%s: record at %d@%d, answer said %v@%v", typ, rec.Partition, rec.Offset, p.body["partition"], p.body["offset"])
		}
		if string(rec.Key) != "sess-"+typ {
			t.Errorf("%s: key %q, want the session id", typ, rec.Key)
		}
		var env map[string]any
		if err := json.Unmarshal(rec.Value, &env); err != nil {
			t.Fatalf("%s: value is not JSON: %v", typ, err)
		}
		id := p.body["message_id"].(string)
		for k, v := range map[string]any{"v": float64(1), "message_id": id, "session_id": "sess-" + typ, "user_id": "alice", "type": typ, "message": "hello " + typ} {
			if env[k] != v {
				t.Errorf("%s: envelope %s = %v, want %v", typ, k, env[k], v)
			}
		}
		if _, err := time.Parse(time.RFC3339, env["created_at"].(string)); err != nil {
			t.Errorf("%s: created_at %v is not RFC 3339", typ, env["created_at"])
		}
		corr := id
		if typ != "query" {
			corr = "q-" + typ
		}
		headers := map[string]string{}
		for _, h := range rec.Headers {
			headers[h.Key] = string(h.Value)
		}
		for k, v := range map[string]string{"kchat-type": typ, "kchat-message-id": id, "kchat-correlation-id": corr, "kchat-user-id": "alice"} {
			if headers[k] != v {
				t.Errorf("%s: header %s = %q, want %q", typ, k, headers[k], v)
			}
		}
	}
}

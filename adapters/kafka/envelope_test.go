package kafka_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
)

func TestRecordCarriesTheSpecEnvelope(t *testing.T) {
	msg := domain.Message{
		MessageID: "a-1", SessionID: "s-1", UserID: "u-1", Type: domain.TypeAnswer,
		Text: "Run make run [1].", ReplyTo: "q-1",
		CreatedAt: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
		Citations: []domain.Citation{{N: 1, Source: "docs/run.md", Title: "Run", Score: 2.5, Snippet: "make run"}},
	}
	rec, err := kafka.NewRecord("answer", msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(rec.Key) != "s-1" || rec.Topic != "answer" {
		t.Fatalf("key %q topic %q", rec.Key, rec.Topic)
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	wantHeaders := map[string]string{"kchat-type": "answer", "kchat-message-id": "a-1", "kchat-correlation-id": "q-1", "kchat-user-id": "u-1"}
	for k, v := range wantHeaders {
		if headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, headers[k], v)
		}
	}
	var env map[string]any
	if err := json.Unmarshal(rec.Value, &env); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"v": float64(1), "message_id": "a-1", "session_id": "s-1", "user_id": "u-1", "type": "answer",
		"message": "Run make run [1].", "reply_to": "q-1", "created_at": "2026-11-26T12:00:00Z"} {
		if env[k] != v {
			t.Errorf("envelope %s = %v, want %v", k, env[k], v)
		}
	}
	if m, ok := env["metadata"].(map[string]any); !ok || len(m) != 0 {
		t.Errorf("metadata = %v, want {}", env["metadata"])
	}
	c := env["citations"].([]any)[0].(map[string]any)
	if c["n"] != float64(1) || c["source"] != "docs/run.md" || c["snippet"] != "make run" {
		t.Errorf("citation = %v", c)
	}
	back, err := kafka.DecodeValue(rec.Value)
	if err != nil || back.MessageID != "a-1" || back.Citations[0].Title != "Run" || !back.CreatedAt.Equal(msg.CreatedAt) {
		t.Fatalf("DecodeValue = %+v, %v", back, err)
	}
}

func TestDecodeRejectsPoison(t *testing.T) {
	tests := map[string]string{
		"not json":      "\x00\x01binary",
		"wrong version": `{"v":2,"message_id":"m","session_id":"s","user_id":"u","type":"query","message":"hi"}`,
		"no version":    `{"message_id":"m","session_id":"s","user_id":"u","type":"query","message":"hi"}`,
		"bad type":      `{"v":1,"message_id":"m","session_id":"s","user_id":"u","type":"shout","message":"hi"}`,
		"empty message": `{"v":1,"message_id":"m","session_id":"s","user_id":"u","type":"query","message":""}`,
		"array":         `[]`,
	}
	for name, value := range tests {
		if _, err := kafka.DecodeValue([]byte(value)); err == nil || !strings.Contains(err.Error(), "envelope") {
			t.Errorf("%s: DecodeValue = %v, want an envelope error", name, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	valid := kafka.DefaultConfig()
	valid.Brokers = []string{"127.0.0.1:9092"}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		give    func(*kafka.Config)
		wantVar string
	}{
		{func(c *kafka.Config) { c.Brokers = nil }, "KCHAT_KAFKA_BROKERS"},
		{func(c *kafka.Config) { c.Brokers = []string{"localhost"} }, "KCHAT_KAFKA_BROKERS"},
		{func(c *kafka.Config) { c.Brokers = []string{"localhost:0"} }, "KCHAT_KAFKA_BROKERS"},
		{func(c *kafka.Config) { c.DeliveryTimeout = 0 }, "KCHAT_KAFKA_DELIVERY_TIMEOUT"},
		{func(c *kafka.Config) { c.Partitions = 0 }, "KCHAT_TOPIC_PARTITIONS"},
		{func(c *kafka.Config) { c.ReplicationFactor = 0 }, "KCHAT_TOPIC_REPLICATION_FACTOR"},
		{func(c *kafka.Config) { c.Retention = time.Millisecond }, "KCHAT_TOPIC_RETENTION"},
		{func(c *kafka.Config) { c.ClientID = "" }, "KCHAT_KAFKA_CLIENT_ID"},
	}
	for _, tt := range tests {
		c := valid
		tt.give(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantVar) {
			t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantVar)
		}
	}
}

package kafka_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestDeltaPublisherKfake(t *testing.T) {
	t.Parallel()
	testDeltaPublisher(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationDeltaPublisher(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-delta")
	testDeltaPublisher(t, kafkatest.Real(t, prefix), prefix)
}

// testDeltaPublisher: the stream topic is created with its short retention;
// deltas land on it keyed by session, as wire.Delta, in order, counted.
func testDeltaPublisher(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.StreamTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	topic := domain.StreamTopicName(prefix)
	configs, err := kadm.NewClient(cl).DescribeTopicConfigs(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range configs[0].Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	if got["retention.ms"] != "60000" || got["segment.ms"] != "60000" || got["cleanup.policy"] != "delete" {
		t.Errorf("%s: retention.ms=%q segment.ms=%q cleanup.policy=%q, want 60000, 60000, delete", topic, got["retention.ms"], got["segment.ms"], got["cleanup.policy"])
	}

	reg := prometheus.NewRegistry()
	pub, err := kafka.NewDeltaPublisher(cfg, log, kafka.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	key, err := domain.NewAnswerKey([]byte("a delta publisher test key, 32 bytes or more"))
	if err != nil {
		t.Fatal(err)
	}
	var sent []domain.Delta
	for seq := range 5 {
		d := key.SignDelta(domain.Delta{ReplyTo: "q1", SessionID: "s1", UserID: "alice", Attempt: 42, Seq: seq, Text: "piece "})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		if err := pub.PublishDelta(ctx, d); err != nil {
			t.Fatalf("delta %d: %v", seq, err)
		}
		cancel()
		sent = append(sent, d)
	}
	recs := kafkatest.ReadAll(t, brokers, topic, len(sent), 10*time.Second)
	if len(recs) != len(sent) {
		t.Fatalf("%d records on %s, want %d", len(recs), topic, len(sent))
	}
	for i, rec := range recs {
		var d wire.Delta
		if err := json.Unmarshal(rec.Value, &d); err != nil {
			t.Fatal(err)
		}
		if string(rec.Key) != "s1" || d.V != 1 || d.Domain() != sent[i] {
			t.Errorf("record %d: key %q value %+v, want key s1 and %+v", i, rec.Key, d, sent[i])
		}
		if err := key.VerifyDelta(d.Domain()); err != nil {
			t.Errorf("record %d does not verify: %v", i, err)
		}
	}
	if n := counted(t, reg, "kchat_stream_deltas_written_total"); n != 5 {
		t.Errorf("kchat_stream_deltas_written_total = %v, want 5", n)
	}
}

// A broker that does not answer costs the caller its ctx's bound, no more,
// and a failure is counted.
func TestDeltaPublisherBoundedWithoutABroker(t *testing.T) {
	t.Parallel()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.DeliveryTimeout = []string{"127.0.0.1:1"}, time.Second
	reg := prometheus.NewRegistry()
	pub, err := kafka.NewDeltaPublisher(cfg, slog.New(slog.DiscardHandler), kafka.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = pub.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := pub.PublishDelta(ctx, domain.Delta{ReplyTo: "q1", SessionID: "s1"}); err == nil {
		t.Fatal("a delta with no broker was acknowledged")
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("PublishDelta took %s with a 100 ms ctx", elapsed)
	}
	// The record itself fails after the delivery timeout, and is counted.
	deadline := time.Now().Add(10 * time.Second)
	for counted(t, reg, "kchat_stream_delta_failures_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the failed delta was never counted")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// counted sums a counter's values over its labels on reg.
func counted(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

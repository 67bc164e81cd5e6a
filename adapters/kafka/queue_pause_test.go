package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
)

func TestPausedPartitionResumesAtOnceKfake(t *testing.T) {
	t.Parallel()
	testPausedPartitionResumesAtOnce(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationPausedPartitionResumesAtOnce(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-pause")
	testPausedPartitionResumesAtOnce(t, kafkatest.Real(t, prefix), prefix)
}

// testPausedPartitionResumesAtOnce is issue 20's fetch stall: every
// partition's buffer fills and fetching pauses while more messages wait in
// Kafka; a caller then drains the buffer. Fetching must resume as the
// buffer gets room, not when the poll loop's wait (250 ms) ends: before,
// the caller found the buffer empty and waited out the rest of that wait,
// every time.
func testPausedPartitionResumesAtOnce(t *testing.T, brokers []string, prefix string) {
	const (
		rounds   = 6
		perRound = 300 // 100 a partition, five buffers' worth
		slow     = 150 * time.Millisecond
	)
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	qcfg := queueConfig(prefix)
	qcfg.PartitionBuffer = 20
	qcfg.MaxInFlight = 1000 // commits are not what this test waits for
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub := kafka.NewPublisher(cl, cfg)
	publish := func(round int) {
		msgs := make([]domain.Message, perRound)
		for i := range msgs {
			msgs[i] = domain.Message{MessageID: domain.NewMessageID(), SessionID: fmt.Sprintf("s%d", i%60), UserID: "u", Type: domain.TypeQuery, Text: fmt.Sprintf("r%d q%d", round, i)}
		}
		for _, r := range pub.PublishBatch(t.Context(), msgs) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	q, _ := startQueue(t, cfg, qcfg)
	take := func() time.Duration {
		start := time.Now()
		b, err := q.Next(context.Background(), ports.NextRequest{Type: domain.TypeQuery, Limit: 1, Wait: 5 * time.Second, Lease: 30 * time.Second, AutoAck: true})
		took := time.Since(start)
		if err != nil || len(b.Deliveries) != 1 {
			t.Fatalf("Next: %d deliveries, %v", len(b.Deliveries), err)
		}
		if err := q.Ack(context.Background(), []string{b.Deliveries[0].Receipt}); err != nil {
			t.Fatal(err)
		}
		return took
	}
	publish(0)
	var slowCalls []time.Duration
	var total time.Duration
	for round := 1; round <= rounds; round++ {
		// The first take fetched round-1's messages: the partitions are
		// past their buffer and pause; this round's messages wait in Kafka.
		took := take()
		time.Sleep(300 * time.Millisecond) // the poll loop has paused and waits in a poll
		publish(round)
		for i := 1; i < perRound; i++ {
			if took > slow {
				slowCalls = append(slowCalls, took)
			}
			total += took
			took = take()
		}
	}
	t.Logf("%d takes in %s; %d waited over %s: %v", rounds*(perRound-1), total.Round(time.Millisecond), len(slowCalls), slow, slowCalls)
	if len(slowCalls) > 1 {
		t.Errorf("%d takes waited over %s for a buffer that had room to fetch into: %v", len(slowCalls), slow, slowCalls)
	}
}

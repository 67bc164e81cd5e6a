package kafka_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
)

// closedPort is an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// nextUntilUnavailable calls Next (no wait) until it fails, for at most
// within, and returns the error.
func nextUntilUnavailable(t *testing.T, q ports.MessageQueue, within time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		b, err := q.Next(ctx, ports.NextRequest{Type: domain.TypeQuery, Limit: 1, AutoAck: true})
		cancel()
		if err != nil {
			return err
		}
		if len(b.Deliveries) > 0 {
			t.Fatalf("Next delivered %d messages from a topic nothing was written to", len(b.Deliveries))
		}
		if time.Now().After(deadline) {
			t.Fatalf("Next still answers an empty batch, not an error, %s after the broker stopped answering", within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A consumer whose broker does not answer must not answer "none": an
// empty topic and a dead broker would look the same (issue 16).
func TestQueueUnavailableWhenNoBrokerAnswers(t *testing.T) {
	t.Parallel()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = []string{closedPort(t)}, testenv.Prefix("dead")
	q, _ := startQueue(t, cfg, queueConfig(cfg.TopicPrefix))
	start := time.Now()
	err := nextUntilUnavailable(t, q, 15*time.Second)
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Next = %v, want domain.ErrUnavailable", err)
	}
	t.Logf("unavailable after %s", time.Since(start).Round(time.Millisecond))
}

// A member whose broker goes away after it joined leaves the group when
// its session fails, and from then on answers ErrUnavailable; before, on
// the live broker, the empty topic answers none.
func TestQueueUnavailableAfterTheBrokerGoes(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = cluster.ListenAddrs(), testenv.Prefix("gone")
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	qcfg := queueConfig(cfg.TopicPrefix)
	qcfg.SessionTimeout = 6 * time.Second // the least allowed
	q, _ := startQueue(t, cfg, qcfg)
	b, err := q.Next(t.Context(), ports.NextRequest{Type: domain.TypeQuery, Limit: 1, Wait: 2 * time.Second, AutoAck: true})
	if err != nil || len(b.Deliveries) != 0 {
		t.Fatalf("empty topic on a live broker: Next = %d deliveries, %v; want none, no error", len(b.Deliveries), err)
	}
	cluster.Close()
	err = nextUntilUnavailable(t, q, qcfg.SessionTimeout+15*time.Second)
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Next = %v, want domain.ErrUnavailable", err)
	}
}

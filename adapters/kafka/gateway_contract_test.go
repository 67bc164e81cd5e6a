package kafka_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
	"github.com/kchat/kchat/ports/porttest"
)

// The gateway's two ports: the "kafka" QueryPublisher and the AnswerFeed.

func TestQueryPublisherContractKfake(t *testing.T) {
	t.Parallel()
	porttest.RunQueryPublisher(t, func(t *testing.T) porttest.QueryPublisherHarness {
		return queryPublisherHarness(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
	})
}

func TestIntegrationQueryPublisherContract(t *testing.T) {
	t.Parallel()
	testenv.KafkaBrokers(t)
	porttest.RunQueryPublisher(t, func(t *testing.T) porttest.QueryPublisherHarness {
		prefix := testenv.Prefix("it-qpub")
		return queryPublisherHarness(t, kafkatest.Real(t, prefix), prefix)
	})
}

func TestAnswerFeedContractKfake(t *testing.T) {
	t.Parallel()
	porttest.RunAnswerFeed(t, func(t *testing.T) porttest.AnswerFeedHarness {
		return answerFeedHarness(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
	})
}

func TestIntegrationAnswerFeedContract(t *testing.T) {
	t.Parallel()
	testenv.KafkaBrokers(t)
	porttest.RunAnswerFeed(t, func(t *testing.T) porttest.AnswerFeedHarness {
		prefix := testenv.Prefix("it-feed")
		return answerFeedHarness(t, kafkatest.Real(t, prefix), prefix)
	})
}

func queryPublisherHarness(t *testing.T, brokers []string, prefix string) porttest.QueryPublisherHarness {
	t.Helper()
	ph := publisherHarness(t, brokers, prefix)
	return porttest.QueryPublisherHarness{
		Publisher: ph.Publisher.(*kafka.Publisher),
		Read: func(t *testing.T, typ domain.MessageType, want int) []porttest.Stored {
			t.Helper()
			return ph.Read(t, domain.TopicName(prefix, typ), want)
		},
		Down: func(t *testing.T) ports.QueryPublisher {
			cfg := kafka.DefaultConfig()
			cfg.Brokers, cfg.TopicPrefix, cfg.DeliveryTimeout = []string{deadAddr(t)}, prefix, time.Second
			cl, err := kafka.NewClient(cfg, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			return kafka.NewPublisher(cl, cfg)
		},
	}
}

// answerFeedHarness runs a feed on the topics under prefix and commits
// with a plain publisher, as the generate stage does.
func answerFeedHarness(t *testing.T, brokers []string, prefix string) porttest.AnswerFeedHarness {
	t.Helper()
	return answerFeedHarnessOf(t, brokers, prefix, func(t *testing.T, cfg kafka.Config) ports.AnswerFeed { return startFeed(t, cfg) })
}

// answerFeedHarnessOf is answerFeedHarness with feeds made by start.
func answerFeedHarnessOf(t *testing.T, brokers []string, prefix string, start func(*testing.T, kafka.Config) ports.AnswerFeed) porttest.AnswerFeedHarness {
	t.Helper()
	ph := publisherHarness(t, brokers, prefix) // creates the topics
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	return porttest.AnswerFeedHarness{
		Feed: start(t, cfg),
		Commit: func(t *testing.T, msgs ...domain.Message) {
			t.Helper()
			for _, r := range ph.Publisher.PublishBatch(context.Background(), msgs) {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
			}
		},
		Start: func(t *testing.T) ports.AnswerFeed { return start(t, cfg) },
		// The feed starts where the topic ended when Run pinned it (see
		// AnswerFeed): it reaches back to nothing older.
		Reach: 0,
	}
}

// startFeed runs an answer feed until the test ends.
func startFeed(t *testing.T, cfg kafka.Config) *kafka.AnswerFeed {
	t.Helper()
	f, err := kafka.NewAnswerFeed(cfg, slog.New(slog.DiscardHandler), kafka.NewMetrics(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("answer feed Run = %v", err)
		}
	})
	return f
}

// deadAddr is a host:port nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

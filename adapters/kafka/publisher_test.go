package kafka_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports/porttest"
)

func TestPublisherContractKfake(t *testing.T) {
	t.Parallel()
	porttest.RunPublisher(t, func(t *testing.T) porttest.PublisherHarness {
		return publisherHarness(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
	})
}

func TestIntegrationPublisherContract(t *testing.T) {
	t.Parallel()
	testenv.KafkaBrokers(t)
	porttest.RunPublisher(t, func(t *testing.T) porttest.PublisherHarness {
		prefix := testenv.Prefix("it-pub")
		return publisherHarness(t, kafkatest.Real(t, prefix), prefix)
	})
}

func publisherHarness(t *testing.T, brokers []string, prefix string) porttest.PublisherHarness {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	return porttest.PublisherHarness{
		Publisher: kafka.NewPublisher(cl, cfg),
		Prefix:    prefix,
		Read: func(t *testing.T, topic string, want int) []porttest.Stored {
			t.Helper()
			var out []porttest.Stored
			for _, r := range kafkatest.ReadAll(t, brokers, topic, want, 20*time.Second) {
				msg, err := kafka.DecodeValue(r.Value)
				if err != nil {
					t.Fatalf("%s[%d]@%d: %v", r.Topic, r.Partition, r.Offset, err)
				}
				out = append(out, porttest.Stored{
					Position: domain.Position{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset},
					Key:      string(r.Key),
					Message:  msg,
				})
			}
			return out
		},
	}
}

package kafka_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports/porttest"
)

func TestTopicAdminContractKfake(t *testing.T) {
	t.Parallel()
	porttest.RunTopicAdmin(t, func(t *testing.T) porttest.TopicAdminHarness {
		return topicAdminHarness(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
	})
}

func TestIntegrationTopicAdminContract(t *testing.T) {
	t.Parallel()
	testenv.KafkaBrokers(t)
	porttest.RunTopicAdmin(t, func(t *testing.T) porttest.TopicAdminHarness {
		prefix := testenv.Prefix("it-admin")
		return topicAdminHarness(t, kafkatest.Real(t, prefix), prefix)
	})
}

func topicAdminHarness(t *testing.T, brokers []string, prefix string) porttest.TopicAdminHarness {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return porttest.TopicAdminHarness{
		Admin:  kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...),
		Prefix: prefix,
		// One partition and a minute's retention, where kchat creates
		// three and two minutes.
		Precreate: func(t *testing.T, typ domain.MessageType) domain.TopicInfo {
			t.Helper()
			other, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			name := domain.TopicName(prefix, typ)
			retention, policy := "60000", "delete"
			resp, err := kadm.NewClient(other).CreateTopic(t.Context(), 1, 1, map[string]*string{"retention.ms": &retention, "cleanup.policy": &policy}, name)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				t.Fatalf("create %s: %v", name, err)
			}
			return domain.TopicInfo{Type: typ, Name: name, Partitions: 1, ReplicationFactor: 1, Retention: time.Minute, CleanupPolicy: policy}
		},
	}
}

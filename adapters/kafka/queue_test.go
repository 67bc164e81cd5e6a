package kafka_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
	"github.com/kchat/kchat/ports/porttest"
)

func TestQueueContractKfake(t *testing.T) {
	t.Parallel()
	porttest.RunQueue(t, func(t *testing.T) porttest.QueueHarness {
		return queueHarness(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
	})
}

func TestIntegrationQueueContract(t *testing.T) {
	t.Parallel()
	testenv.KafkaBrokers(t)
	porttest.RunQueue(t, func(t *testing.T) porttest.QueueHarness {
		prefix := testenv.Prefix("it-queue")
		return queueHarness(t, kafkatest.Real(t, prefix), prefix)
	})
}

// startQueue runs a queue until the test ends or stop is called.
func startQueue(t *testing.T, cfg kafka.Config, qcfg kafka.QueueConfig) (ports.MessageQueue, func()) {
	t.Helper()
	return startQueueWith(t, cfg, qcfg, kafka.NewMetrics(nil))
}

// startQueueWith is startQueue with metrics.
func startQueueWith(t *testing.T, cfg kafka.Config, qcfg kafka.QueueConfig, metrics *kafka.Metrics) (*kafka.Queue, func()) {
	t.Helper()
	q, err := kafka.NewQueue(cfg, qcfg, slog.New(slog.DiscardHandler), metrics)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = q.Run(ctx); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return q, stop
}

func queueHarness(t *testing.T, brokers []string, prefix string) porttest.QueueHarness {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	qcfg := kafka.DefaultQueueConfig()
	qcfg.Group = prefix + "group"
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
	q, stop := startQueue(t, cfg, qcfg)
	return porttest.QueueHarness{
		Queue: q,
		Publish: func(t *testing.T, msgs ...domain.Message) {
			t.Helper()
			for _, r := range pub.PublishBatch(context.Background(), msgs) {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
			}
		},
		Restart: func(t *testing.T) ports.MessageQueue {
			stop()
			q, stop = startQueue(t, cfg, qcfg)
			return q
		},
		PublishRaw: func(t *testing.T, typ domain.MessageType, key string, raw []byte) {
			t.Helper()
			rec := &kgo.Record{Topic: domain.TopicName(prefix, typ), Key: []byte(key), Value: raw}
			if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		},
		Trim: func(t *testing.T, typ domain.MessageType, offset int64) {
			t.Helper()
			topic := domain.TopicName(prefix, typ)
			adm := kadm.NewClient(cl)
			ends, err := adm.ListEndOffsets(context.Background(), topic)
			if err != nil {
				t.Fatal(err)
			}
			os := kadm.Offsets{}
			ends.Each(func(e kadm.ListedOffset) {
				if e.Offset >= offset {
					os.Add(kadm.Offset{Topic: topic, Partition: e.Partition, At: offset})
				}
			})
			resp, err := adm.DeleteRecords(context.Background(), os)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				t.Fatalf("delete records: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		},
	}
}

package kafka_test

import (
	"context"
	"log/slog"
	"sync"
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

// testReceiptKey is the receipt key of every test queue.
const testReceiptKey = "kafka-test-receipt-key-0123456789abcdef"

// queueConfig is the default queue configuration with prefix's group and
// the test receipt key.
func queueConfig(prefix string) kafka.QueueConfig {
	qcfg := kafka.DefaultQueueConfig()
	qcfg.Group, qcfg.ReceiptKey = prefix+"group", testReceiptKey
	return qcfg
}

func queueHarness(t *testing.T, brokers []string, prefix string) porttest.QueueHarness {
	t.Helper()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	qcfg := queueConfig(prefix)
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
		OtherGroup: func(t *testing.T) ports.MessageQueue {
			ocfg := qcfg
			ocfg.Group = prefix + "other"
			other, _ := startQueue(t, cfg, ocfg)
			return other
		},
		Peer: func(t *testing.T) ports.MessageQueue {
			peer, _ := startQueue(t, cfg, qcfg)
			settle(t, q, peer)
			return peer
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

// settle lets a group of members join and settle, so that no rebalance
// hands a partition to another member in the middle of a test (a manually
// leased message then goes to the new owner, which serves it again by
// design).
func settle(t *testing.T, members ...ports.MessageQueue) {
	t.Helper()
	var wg sync.WaitGroup
	for _, q := range members {
		for _, typ := range domain.MessageTypes {
			wg.Go(func() {
				if _, err := q.Next(context.Background(), ports.NextRequest{Type: typ, Limit: 1, Wait: 3 * time.Second, Lease: time.Second}); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
}

func TestFirstCallAfterRestartPastACommitMarkerKfake(t *testing.T) {
	t.Parallel()
	testFirstCallAfterRestartPastACommitMarker(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationFirstCallAfterRestartPastACommitMarker(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-marker")
	testFirstCallAfterRestartPastACommitMarker(t, kafkatest.Real(t, prefix), prefix)
}

// testFirstCallAfterRestartPastACommitMarker consumes every answer of a
// transaction and restarts: all that is left of the partition is the
// commit marker, which the group's committed offset cannot pass (it is no
// record to acknowledge). The first call with wait=0 must still answer at
// once, not wait out the startup grace (10 s) for a backlog of one marker.
func testFirstCallAfterRestartPastACommitMarker(t *testing.T, brokers []string, prefix string) {
	h := queueHarness(t, brokers, prefix)
	answerTransactions(t, brokers, prefix)(true, "s1", "s1")
	drain(t, h.Queue, domain.TypeAnswer, 2)
	q := h.Restart(t)
	start := time.Now()
	b, err := q.Next(context.Background(), ports.NextRequest{Type: domain.TypeAnswer, Limit: 5, Lease: time.Minute})
	if took := time.Since(start); err != nil || len(b.Deliveries) != 0 || took > 3*time.Second {
		t.Fatalf("first Next after the restart = %d answers, %v after %s; want none at once", len(b.Deliveries), err, took)
	}
}

// drain takes and acknowledges n messages of typ.
func drain(t *testing.T, q ports.MessageQueue, typ domain.MessageType, n int) {
	t.Helper()
	for got := 0; got < n; {
		b, err := q.Next(context.Background(), ports.NextRequest{Type: typ, Limit: n, Wait: 10 * time.Second, Lease: time.Minute})
		if err != nil || len(b.Deliveries) == 0 {
			t.Fatalf("Next = %d messages, %v; want the %d left", len(b.Deliveries), err, n-got)
		}
		receipts := make([]string, len(b.Deliveries))
		for i, d := range b.Deliveries {
			receipts[i] = d.Receipt
		}
		if err := q.Ack(context.Background(), receipts); err != nil {
			t.Fatal(err)
		}
		got += len(b.Deliveries)
	}
}

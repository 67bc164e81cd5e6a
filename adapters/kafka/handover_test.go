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

func TestRebalanceServesNothingAcknowledgedAgainKfake(t *testing.T) {
	t.Parallel()
	testRebalanceHandover(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationRebalanceServesNothingAcknowledgedAgain(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-handover")
	testRebalanceHandover(t, kafkatest.Real(t, prefix), prefix)
}

// A member holds an ack=manual lease on the oldest message of each
// partition and acknowledged the messages after it, when a second member
// joins and takes partitions over: the commit cannot pass the leases, but
// the acknowledged messages travel with it (queue_handover.go), so the new
// member serves the leased messages again (their leases moved away) and
// none of the acknowledged ones.
func testRebalanceHandover(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	qcfg := queueConfig(prefix)
	qcfg.SettleTimeout = 500 * time.Millisecond
	log := slog.New(slog.DiscardHandler)
	cl, err := kafka.NewClient(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.NewTopicAdmin(cl, cfg, log, kafka.PipelineTopics(cfg)...).EnsureTopics(t.Context()); err != nil {
		t.Fatal(err)
	}
	var msgs []domain.Message
	for i := range 60 {
		msgs = append(msgs, domain.Message{MessageID: fmt.Sprintf("m-%02d", i), SessionID: fmt.Sprintf("s-%d", i%12), UserID: "u",
			Type: domain.TypeQuery, Text: "q", CreatedAt: time.Now()})
	}
	for _, r := range kafka.NewPublisher(cl, cfg).PublishBatch(context.Background(), msgs) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	a, _ := startQueue(t, cfg, qcfg)
	held := map[int32]domain.Delivery{}
	acked := map[string]bool{}
	for deadline := time.Now().Add(20 * time.Second); len(acked)+len(held) < len(msgs) && time.Now().Before(deadline); {
		b, err := a.Next(context.Background(), ports.NextRequest{Type: domain.TypeQuery, Limit: 100, Wait: time.Second, Lease: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var receipts []string
		for _, d := range b.Deliveries {
			if _, ok := held[d.Partition]; !ok {
				held[d.Partition] = d
				continue
			}
			receipts = append(receipts, d.Receipt)
			acked[d.Message.MessageID] = true
		}
		if len(receipts) > 0 {
			if err := a.Ack(context.Background(), receipts); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(held) != 3 || len(acked) != len(msgs)-3 {
		t.Fatalf("held %d leases and acknowledged %d, want 3 and %d", len(held), len(acked), len(msgs)-3)
	}

	b, _ := startQueue(t, cfg, qcfg)
	served := map[string]int{}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		got, err := b.Next(context.Background(), ports.NextRequest{Type: domain.TypeQuery, Limit: 100, Wait: 500 * time.Millisecond, Lease: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range got.Deliveries {
			served[d.Message.MessageID]++
		}
		if len(served) > 0 && len(got.Deliveries) == 0 {
			break // b took its partitions and served what they had
		}
	}
	if len(served) == 0 {
		t.Fatal("the new member served nothing: no partition moved")
	}
	for id, n := range served {
		if acked[id] {
			t.Errorf("the new member served %s, acknowledged before the rebalance, %d time(s)", id, n)
		}
	}
	for id := range served {
		if acked[id] {
			continue
		}
		leased := false
		for _, d := range held {
			leased = leased || d.Message.MessageID == id
		}
		if !leased {
			t.Errorf("the new member served %s, which was neither leased nor acknowledged", id)
		}
	}
}

package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
)

func TestAckOnAnotherReplicaKfake(t *testing.T) {
	t.Parallel()
	testAckOnAnotherReplica(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationAckOnAnotherReplica(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-fwd")
	testAckOnAnotherReplica(t, kafkatest.Real(t, prefix), prefix)
}

// testAckOnAnotherReplica leases a message from one member of the group and
// acknowledges it on the other: it must never be served again.
func testAckOnAnotherReplica(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	qcfg := kafka.DefaultQueueConfig()
	qcfg.Group = prefix + "group"
	h := queueHarness(t, brokers, prefix) // creates the topics; its queue is a third member
	other, _ := startQueue(t, cfg, qcfg)
	members := []ports.MessageQueue{h.Queue, other}
	// Let the group settle first: a rebalance hands a manually leased
	// message to the new owner, which serves it again by design.
	for _, q := range members {
		if _, err := q.Next(context.Background(), ports.NextRequest{Type: domain.TypePrompt, Limit: 1, Wait: 3 * time.Second, Lease: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	h.Publish(t, domain.Message{MessageID: domain.NewMessageID(), SessionID: "s", UserID: "u", Type: domain.TypePrompt, Text: "p"})

	req := ports.NextRequest{Type: domain.TypePrompt, Limit: 1, Wait: 500 * time.Millisecond, Lease: 2 * time.Second}
	var holder int
	var d domain.Delivery
	deadline := time.Now().Add(30 * time.Second)
	for d.Receipt == "" && time.Now().Before(deadline) {
		for i, q := range members {
			b, err := q.Next(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Deliveries) == 1 {
				holder, d = i, b.Deliveries[0]
				break
			}
		}
	}
	if d.Receipt == "" {
		t.Fatal("no member served the message")
	}
	if err := members[1-holder].Ack(context.Background(), []string{d.Receipt}); err != nil {
		t.Fatalf("ack on the other replica: %v", err)
	}
	time.Sleep(3 * time.Second) // past the lease
	for i, q := range members {
		b, err := q.Next(context.Background(), ports.NextRequest{Type: domain.TypePrompt, Limit: 1, Wait: 500 * time.Millisecond, Lease: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Deliveries) != 0 {
			t.Fatalf("member %d served the acknowledged message again", i)
		}
	}
}

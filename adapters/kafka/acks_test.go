package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
	checkAcksTopic(t, brokers, cfg)
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

// checkAcksTopic checks that the queues created the forwarding topic, with
// its one partition.
func checkAcksTopic(t *testing.T, brokers []string, cfg kafka.Config) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	name := kafka.AcksTopic(cfg).Name
	details, err := kadm.NewClient(cl).ListTopics(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if d := details[name]; d.Err != nil || len(d.Partitions) != 1 {
		t.Fatalf("acks topic %s: %d partitions, err %v; want 1 partition", name, len(d.Partitions), d.Err)
	}
}

// TestAckForwardsOnlyReceiptsOfItsTopicsKfake acknowledges receipts this
// replica did not issue: well-formed ones of its topics go to their
// replica, anything else (another tag, malformed, forged) is unknown and
// never forwarded.
func TestAckForwardsOnlyReceiptsOfItsTopicsKfake(t *testing.T) {
	t.Parallel()
	brokers, prefix := kafkatest.Fake(t), testenv.Prefix("kfake")
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	h := queueHarness(t, brokers, prefix)

	peers := []string{"query~deadbeef.0.0.1", "answer~0123abcd.2.17.az"}
	for _, r := range peers {
		if err := h.Queue.Ack(context.Background(), []string{r}); err != nil {
			t.Fatalf("Ack(%q) = %v, want it forwarded", r, err)
		}
	}
	notOurs := []string{
		"other~deadbeef.0.0.1",   // a tag that names no topic of this queue
		"query~deadbeef.0.0",     // a field missing
		"query~DEADBEEF.0.0.1",   // not an instance
		"query~deadbeef.-1.0.1",  // a negative partition
		"query~deadbeef.0.0.1\n", // a trailing newline
		"no-such-receipt",
	}
	err := h.Queue.Ack(context.Background(), notOurs)
	var unknown *domain.UnknownReceiptsError
	if !errors.As(err, &unknown) || !slices.Equal(unknown.Receipts, notOurs) {
		t.Fatalf("Ack(not ours) = %v, want every one unknown", err)
	}

	var forwarded []string
	for _, r := range kafkatest.ReadAll(t, brokers, kafka.AcksTopic(cfg).Name, len(peers), 10*time.Second) {
		var fa struct{ Receipts []string }
		if err := json.Unmarshal(r.Value, &fa); err != nil {
			t.Fatal(err)
		}
		forwarded = append(forwarded, fa.Receipts...)
	}
	if !slices.Equal(forwarded, peers) {
		t.Fatalf("forwarded %q, want %q", forwarded, peers)
	}
}

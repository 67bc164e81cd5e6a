package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/internal/ledger"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
	"github.com/kchat/kchat/ports"
)

// mint returns a receipt of typ signed for group with key by a ledger no
// replica runs: what a replica that is gone issued.
func mint(t *testing.T, group, key string, typ domain.MessageType) string {
	t.Helper()
	s, err := ledger.NewSigner(group, []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.New[int](string(typ), 0, s)
	l.Assign(0, 1)
	l.Add(0, 1, []int64{0}, []int{0})
	return l.Take(1, time.Now(), time.Minute, false)[0].Receipt
}

func TestAckOfAGoneOwnersReceiptKfake(t *testing.T) {
	t.Parallel()
	testAckOfAGoneOwnersReceipt(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationAckOfAGoneOwnersReceipt(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-gone")
	testAckOfAGoneOwnersReceipt(t, kafkatest.Real(t, prefix), prefix)
}

// testAckOfAGoneOwnersReceipt leases a message on one member of the group,
// stops that member (its partitions and leases move on) and acknowledges
// the receipt on the other: no replica holds it, so it is unknown once the
// delivery timeout has passed: never acknowledged, never a hang.
func testAckOfAGoneOwnersReceipt(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	cfg.DeliveryTimeout = 2 * time.Second
	h := queueHarness(t, brokers, prefix) // creates the topics
	qcfg := queueConfig(prefix)
	qcfg.Group = prefix + "gone" // not the harness queue's group
	first, stopFirst := startQueue(t, cfg, qcfg)
	second, stopSecond := startQueue(t, cfg, qcfg)
	settle(t, first, second)
	h.Publish(t, domain.Message{MessageID: domain.NewMessageID(), SessionID: "s", UserID: "u", Type: domain.TypePrompt, Text: "p"})

	members := []ports.MessageQueue{first, second}
	var holder int
	var d domain.Delivery
	deadline := time.Now().Add(30 * time.Second)
	for d.Receipt == "" && time.Now().Before(deadline) {
		for i, q := range members {
			got, err := q.Next(context.Background(), ports.NextRequest{Type: domain.TypePrompt, Limit: 1, Wait: 300 * time.Millisecond, Lease: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Deliveries) == 1 {
				holder, d = i, got.Deliveries[0]
				break
			}
		}
	}
	if d.Receipt == "" {
		t.Fatal("no member served the message")
	}
	survivor := members[1-holder]
	[]func(){stopFirst, stopSecond}[holder]()
	start := time.Now()
	err := survivor.Ack(context.Background(), []string{d.Receipt})
	took := time.Since(start)
	var unknown *domain.UnknownReceiptsError
	if !errors.As(err, &unknown) || !slices.Equal(unknown.Receipts, []string{d.Receipt}) {
		t.Fatalf("Ack of a gone owner's receipt = %v, want it unknown", err)
	}
	if took < cfg.DeliveryTimeout-100*time.Millisecond || took > cfg.DeliveryTimeout+3*time.Second {
		t.Fatalf("the answer took %s, want about the delivery timeout (%s)", took, cfg.DeliveryTimeout)
	}
	checkAcksTopic(t, brokers, cfg)
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

// TestAckRefusesWhatDoesNotVerifyKfake acknowledges receipts that do not
// verify: made up under our key id, another group's, another key's,
// malformed. Each is unknown at once and none is forwarded; another key's
// is logged as an ERROR naming KCHAT_RECEIPT_KEY and counted.
func TestAckRefusesWhatDoesNotVerifyKfake(t *testing.T) {
	t.Parallel()
	brokers, prefix := kafkatest.Fake(t), testenv.Prefix("kfake")
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	cfg.DeliveryTimeout = time.Second
	qcfg := queueConfig(prefix)
	queueHarness(t, brokers, prefix) // creates the topics
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	metrics := kafka.NewMetrics(reg)
	q, err := kafka.NewQueue(cfg, qcfg, slog.New(slog.NewTextHandler(logs, nil)), metrics)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	otherKey := "another-receipt-key-0123456789abcdef"
	gone := mint(t, qcfg.Group, testReceiptKey, domain.TypePrompt) // verifies; its owner is gone
	made := mint(t, qcfg.Group, testReceiptKey, domain.TypeQuery)
	madeUp := made[:len(made)-32] + strings.Repeat("0", 32)
	refused := []string{
		madeUp,
		mint(t, prefix+"other", testReceiptKey, domain.TypeQuery), // another group's
		mint(t, qcfg.Group, otherKey, domain.TypeQuery),           // another key's
		strings.Replace(made, "query~", "other~", 1),              // a tag that names no topic
		"no-such-receipt",
	}
	start := time.Now()
	err = q.Ack(context.Background(), refused)
	var unknown *domain.UnknownReceiptsError
	if !errors.As(err, &unknown) || !slices.Equal(unknown.Receipts, refused) {
		t.Fatalf("Ack(refused) = %v, want every one unknown", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("refusing took %s: something waited for a verdict", took)
	}
	// Only a receipt that verifies is forwarded.
	if err := q.Ack(context.Background(), []string{gone}); !errors.As(err, &unknown) {
		t.Fatalf("Ack(gone owner) = %v, want unknown", err)
	}
	recs := kafkatest.ReadAll(t, brokers, kafka.AcksTopic(cfg).Name, 1, 10*time.Second)
	var forwarded []string
	for _, r := range recs {
		var m struct{ Receipts []string }
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatal(err)
		}
		forwarded = append(forwarded, m.Receipts...)
	}
	if !slices.Equal(forwarded, []string{gone}) {
		t.Fatalf("forwarded %q, want only %q", forwarded, gone)
	}

	wantLog := "another KCHAT_RECEIPT_KEY (key id " + domain.KeyID([]byte(otherKey)) + ", ours " + domain.KeyID([]byte(testReceiptKey)) + ")"
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), wantLog) {
		t.Fatalf("no ERROR naming %q in the log:\n%s", wantLog, logs)
	}
	if strings.Contains(logs.String(), testReceiptKey) || strings.Contains(logs.String(), otherKey) {
		t.Fatalf("the log shows a key:\n%s", logs)
	}
	if n := counter(t, reg, "kchat_consumer_receipt_key_mismatch_total"); n != 1 {
		t.Fatalf("kchat_consumer_receipt_key_mismatch_total = %v, want 1", n)
	}
}

func TestNewQueueRefusesAShortReceiptKey(t *testing.T) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	qcfg := queueConfig("short")
	qcfg.ReceiptKey = "too-short"
	_, err := kafka.NewQueue(cfg, qcfg, slog.New(slog.DiscardHandler), kafka.NewMetrics(nil))
	if err == nil || !strings.Contains(err.Error(), "KCHAT_RECEIPT_KEY") || strings.Contains(err.Error(), "too-short") {
		t.Fatalf("NewQueue(short key) = %v, want an error naming KCHAT_RECEIPT_KEY, not the key", err)
	}
}

// counter returns the value of the counter name on reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

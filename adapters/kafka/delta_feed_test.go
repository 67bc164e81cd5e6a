package kafka_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestDeltaFeedKfake(t *testing.T) {
	t.Parallel()
	testDeltaFeed(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationDeltaFeed(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-deltas")
	testDeltaFeed(t, kafkatest.Real(t, prefix), prefix)
}

// The delta feed starts at the stream topic's end, reads at
// read_uncommitted (a delta written inside a transaction still open
// arrives), skips a record that is not a delta, and hands every delta to
// every subscriber in the order written.
func testDeltaFeed(t *testing.T, brokers []string, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := domain.StreamTopicName(prefix)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(prefix+"txn"), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produce := func(values ...[]byte) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("s1"), Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit := func() {
		t.Helper()
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	delta := func(seq int, text string) []byte {
		b, _ := json.Marshal(wire.DeltaOf(domain.Delta{ReplyTo: "q1", SessionID: "s1", UserID: "u", Attempt: 1, Seq: seq, Text: text, Signature: "sig"}))
		return b
	}
	produce(delta(0, "BEFORE"))
	commit()

	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	f, err := kafka.NewDeltaFeed(cfg, slog.New(slog.DiscardHandler), kafka.NewMetrics(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("delta feed Run = %v", err)
		}
	})
	a, b := make(chan domain.Delta, 10), make(chan domain.Delta, 10)
	for _, ch := range []chan domain.Delta{a, b} {
		if err := f.Subscribe(ctx, func(d domain.Delta) { ch <- d }); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Ready(ctx); err != nil {
		t.Fatalf("Ready = %v", err)
	}

	produce(delta(0, "Hello"), []byte(`{"type":"answer","message":"not a delta"}`), []byte("\x00garbage"), delta(1, " world"))
	// Not committed yet: read_uncommitted sees the deltas now.
	for _, ch := range []chan domain.Delta{a, b} {
		var got []string
		for len(got) < 2 {
			select {
			case d := <-ch:
				if d.Signature != "sig" || d.UserID != "u" || d.Attempt != 1 {
					t.Errorf("delta = %+v", d)
				}
				got = append(got, d.Text)
			case <-ctx.Done():
				t.Fatalf("deltas of an open transaction never arrived; got %q", got)
			}
		}
		if s := strings.Join(got, ""); s != "Hello world" {
			t.Errorf("a subscriber got %q, want %q (nothing written before the feed started)", s, "Hello world")
		}
	}
	commit()
}

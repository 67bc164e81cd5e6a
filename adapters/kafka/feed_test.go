package kafka_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestAnswerFeedBeforeTheTopicExistsKfake(t *testing.T) {
	t.Parallel()
	testFeedBeforeTheTopic(t, kafkatest.Fake(t), testenv.Prefix("kfake"))
}

func TestIntegrationAnswerFeedBeforeTheTopicExists(t *testing.T) {
	t.Parallel()
	prefix := testenv.Prefix("it-feed")
	testFeedBeforeTheTopic(t, kafkatest.Real(t, prefix), prefix)
}

// A gateway may start before any service created the answer topic: its
// feed then reads the topic from its start once it appears, so the first
// answers are not lost.
func testFeedBeforeTheTopic(t *testing.T, brokers []string, prefix string) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.TopicPrefix = brokers, prefix
	feed := startFeed(t, cfg)
	got := make(chan domain.Message, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := feed.Subscribe(ctx, func(m domain.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.NewTopicAdmin(cl, cfg, slog.New(slog.DiscardHandler), kafka.PipelineTopics(cfg)...).EnsureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	a := domain.Message{MessageID: domain.NewMessageID(), SessionID: "s", UserID: "u", Type: domain.TypeAnswer, Text: "first", ReplyTo: "q", CreatedAt: time.Now()}
	if _, err := kafka.NewPublisher(cl, cfg).Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.MessageID != a.MessageID {
			t.Fatalf("got %s, want %s", m.MessageID, a.MessageID)
		}
	case <-ctx.Done():
		t.Fatal("the first answer on a topic created after the feed started never arrived")
	}
}

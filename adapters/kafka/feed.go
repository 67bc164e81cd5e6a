package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// AnswerFeed reads the answer topic (feedReader: its own reader, no
// consumer group, every gateway replica sees every answer) at
// read_committed, from where the topic ended when the feed started, and
// hands each answer to every subscriber. A record that is no message is
// logged and skipped.
type AnswerFeed struct {
	feedReader[domain.Message]
}

var _ ports.AnswerFeed = (*AnswerFeed)(nil)

// NewAnswerFeed creates the feed's client; Run pins the start and reads.
func NewAnswerFeed(cfg Config, log *slog.Logger, metrics *Metrics) (*AnswerFeed, error) {
	fcfg := cfg
	fcfg.ClientID = cfg.ClientID + "-answer-feed"
	cl, err := NewClient(fcfg, log, metrics.client("answer-feed"),
		// For a topic that appears after the feed started.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return nil, err
	}
	topic := domain.TopicName(cfg.TopicPrefix, domain.TypeAnswer)
	return &AnswerFeed{newFeedReader(cl, topic, "answer feed", DecodeRecord, log, metrics.tracer())}, nil
}

// PublishQuery publishes a query directly to Kafka: the gateway's "kafka"
// QueryPublisher.
func (p *Publisher) PublishQuery(ctx context.Context, q domain.Message) error {
	if q.Type != domain.TypeQuery {
		return fmt.Errorf("publish query: type %q", q.Type)
	}
	_, err := p.Publish(ctx, q)
	return err
}

var _ ports.QueryPublisher = (*Publisher)(nil)

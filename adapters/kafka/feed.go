package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// AnswerFeed reads the answer topic as this process's own reader (no
// consumer group: every gateway replica sees every answer), at
// read_committed, from its start on, and hands each answer to
// every subscriber.
type AnswerFeed struct {
	cl  *kgo.Client
	log *slog.Logger

	mu   sync.Mutex
	subs map[int]func(domain.Message)
	next int
}

var _ ports.AnswerFeed = (*AnswerFeed)(nil)

// NewAnswerFeed creates the feed's client; Run reads.
func NewAnswerFeed(cfg Config, log *slog.Logger, metrics *Metrics) (*AnswerFeed, error) {
	fcfg := cfg
	fcfg.ClientID = cfg.ClientID + "-answer-feed"
	cl, err := NewClient(fcfg, log, metrics.client("answer-feed"),
		kgo.ConsumeTopics(domain.TopicName(cfg.TopicPrefix, domain.TypeAnswer)),
		// Everything committed from now on, by timestamp: unlike "the
		// end", this holds even when the topic only appears later.
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(time.Now().Add(-time.Second).UnixMilli())),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if err != nil {
		return nil, err
	}
	return &AnswerFeed{cl: cl, log: log, subs: map[int]func(domain.Message){}}, nil
}

// Subscribe registers fn until ctx ends.
func (f *AnswerFeed) Subscribe(ctx context.Context, fn func(domain.Message)) error {
	f.mu.Lock()
	id := f.next
	f.next++
	f.subs[id] = fn
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	})
	return nil
}

// Run reads answers until ctx ends, then closes the client.
func (f *AnswerFeed) Run(ctx context.Context) error {
	defer f.cl.Close()
	for {
		fetches := f.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachRecord(func(r *kgo.Record) {
			m, err := DecodeValue(r.Value)
			if err != nil {
				f.log.Warn("answer feed: not an envelope", "partition", r.Partition, "offset", r.Offset, "err", err)
				return
			}
			f.mu.Lock()
			fns := make([]func(domain.Message), 0, len(f.subs))
			for _, fn := range f.subs {
				fns = append(fns, fn)
			}
			f.mu.Unlock()
			for _, fn := range fns {
				fn(m)
			}
		})
	}
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

// Ready reports whether a broker answers.
func (f *AnswerFeed) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := f.cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka ping: %w: %w", domain.ErrUnavailable, err)
	}
	return nil
}

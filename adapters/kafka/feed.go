package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// AnswerFeed reads the answer topic as this process's own reader (no
// consumer group: every gateway replica sees every answer), at
// read_committed, from where the topic ended when the feed started, and
// hands each answer to every subscriber.
//
// The start is pinned to the listed end offsets before any subscriber is
// let in: franz-go's time-based reset falls back to a separate end-offset
// request for a partition with no recent record, and an answer committed
// between the two would be skipped. A topic that does not exist yet is read
// from its start once it appears: all it holds is new.
type AnswerFeed struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string
	log   *slog.Logger

	pinned chan struct{} // closed once the start offsets are set

	mu   sync.Mutex
	subs map[int]feedSub
	next int
}

type feedSub struct {
	ctx context.Context
	fn  func(domain.Message)
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
	return &AnswerFeed{
		cl: cl, adm: kadm.NewClient(cl), topic: domain.TopicName(cfg.TopicPrefix, domain.TypeAnswer), log: log,
		pinned: make(chan struct{}), subs: map[int]feedSub{},
	}, nil
}

// Subscribe registers fn until ctx ends; fn is not called once ctx has
// ended. It waits until Run has pinned where the feed starts (the broker
// answered), so every answer committed after it returns reaches fn; it
// returns ctx's error if ctx ends first.
func (f *AnswerFeed) Subscribe(ctx context.Context, fn func(domain.Message)) error {
	select {
	case <-f.pinned:
	case <-ctx.Done():
		return fmt.Errorf("answer feed not started: %w", ctx.Err())
	}
	f.mu.Lock()
	id := f.next
	f.next++
	f.subs[id] = feedSub{ctx: ctx, fn: fn}
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	})
	return nil
}

// Run pins the start, then reads answers until ctx ends, then closes the
// client.
func (f *AnswerFeed) Run(ctx context.Context) error {
	defer f.cl.Close()
	if err := f.pin(ctx); err != nil {
		return nil //nolint:nilerr // stopped before the broker answered
	}
	for {
		fetches := f.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachRecord(f.deliver)
	}
}

// pin lists the answer topic's end offsets, retrying until the broker
// answers, and starts consuming there (or at the start of a topic that does
// not exist yet).
func (f *AnswerFeed) pin(ctx context.Context) error {
	if err := pinAtEnd(ctx, f.cl, f.adm, f.topic, f.log, "answer feed"); err != nil {
		return err
	}
	close(f.pinned)
	return nil
}

// pinAtEnd makes cl consume topic from its end offsets as listed now,
// retrying (logged as name's) until the broker answers, or from the start
// of a topic that does not exist yet: all it will hold is new.
func pinAtEnd(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string, log *slog.Logger, name string) error {
	backoff := 100 * time.Millisecond
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ends, err := adm.ListEndOffsets(lctx, topic)
		cancel()
		if err == nil {
			err = ends.Error()
		}
		switch {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			cl.AddConsumeTopics(topic)
			return nil
		case err == nil:
			at := map[int32]kgo.Offset{}
			ends.Each(func(o kadm.ListedOffset) { at[o.Partition] = kgo.NewOffset().At(o.Offset) })
			cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: at})
			return nil
		}
		log.WarnContext(ctx, name+": cannot list the topic's end; retrying", "topic", topic, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (f *AnswerFeed) deliver(r *kgo.Record) {
	m, err := DecodeRecord(r)
	if err != nil {
		f.log.Warn("answer feed: not an envelope", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	f.mu.Lock()
	subs := make([]feedSub, 0, len(f.subs))
	for _, s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		// A subscriber may have ended its subscription (from fn itself,
		// say) since the list was taken.
		if s.ctx.Err() == nil {
			s.fn(m)
		}
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

// Ready reports whether a broker answers a request now (ping).
func (f *AnswerFeed) Ready(ctx context.Context) error {
	return ping(ctx, f.cl)
}

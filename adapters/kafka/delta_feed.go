package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// DeltaFeed reads the stream topic (the deltas of answers being generated,
// docs/design.md, "Streaming answers") as this process's own reader, like
// AnswerFeed: no consumer group, so every gateway replica sees every
// delta, from where the topic ended when the feed started. Unlike it, at
// read_uncommitted: deltas ride no transaction, and waiting for one would
// defeat them. A record that is not a delta is logged and skipped.
type DeltaFeed struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string
	log   *slog.Logger

	pinned chan struct{} // closed once the start offsets are set

	mu   sync.Mutex
	subs map[int]deltaSub
	next int
}

type deltaSub struct {
	ctx context.Context
	fn  func(domain.Delta)
}

var _ ports.DeltaFeed = (*DeltaFeed)(nil)

// NewDeltaFeed creates the feed's client; Run pins the start and reads.
func NewDeltaFeed(cfg Config, log *slog.Logger, metrics *Metrics) (*DeltaFeed, error) {
	fcfg := cfg
	fcfg.ClientID = cfg.ClientID + "-delta-feed"
	cl, err := NewClient(fcfg, log, metrics.client("delta-feed"),
		// For a topic that appears after the feed started.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		// A delta is worth its latency: do not wait to fill a fetch.
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	return &DeltaFeed{
		cl: cl, adm: kadm.NewClient(cl), topic: domain.StreamTopicName(cfg.TopicPrefix), log: log,
		pinned: make(chan struct{}), subs: map[int]deltaSub{},
	}, nil
}

// Subscribe registers fn until ctx ends; fn is not called once ctx has
// ended. It waits until Run has pinned where the feed starts, so every
// delta written after it returns reaches fn; it returns ctx's error if ctx
// ends first.
func (f *DeltaFeed) Subscribe(ctx context.Context, fn func(domain.Delta)) error {
	select {
	case <-f.pinned:
	case <-ctx.Done():
		return fmt.Errorf("delta feed not started: %w", ctx.Err())
	}
	f.mu.Lock()
	id := f.next
	f.next++
	f.subs[id] = deltaSub{ctx: ctx, fn: fn}
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	})
	return nil
}

// Run pins the start, then reads deltas until ctx ends, then closes the
// client.
func (f *DeltaFeed) Run(ctx context.Context) error {
	defer f.cl.Close()
	if err := pinAtEnd(ctx, f.cl, f.adm, f.topic, f.log, "delta feed"); err != nil {
		return nil //nolint:nilerr // stopped before the broker answered
	}
	close(f.pinned)
	for {
		fetches := f.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachRecord(f.deliver)
	}
}

// Ready reports whether a broker answers a request now (ping).
func (f *DeltaFeed) Ready(ctx context.Context) error {
	return ping(ctx, f.cl)
}

func (f *DeltaFeed) deliver(r *kgo.Record) {
	d, err := decodeDelta(r.Value)
	if err != nil {
		f.log.Warn("delta feed: not a delta; skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	f.mu.Lock()
	subs := make([]deltaSub, 0, len(f.subs))
	for _, s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		if s.ctx.Err() == nil {
			s.fn(d)
		}
	}
}

var errNotDelta = errors.New("not a version 1 delta naming its question and session")

// decodeDelta reads a stream record's value (wire.Delta). Whether the
// delta is the answerer's is its subscriber's to check (the signature).
func decodeDelta(value []byte) (domain.Delta, error) {
	var w wire.Delta
	if err := json.Unmarshal(value, &w); err != nil {
		return domain.Delta{}, fmt.Errorf("%w: %w", errNotDelta, err)
	}
	if w.V != 1 || w.ReplyTo == "" || w.SessionID == "" || w.Attempt < 0 || w.Seq < 0 {
		return domain.Delta{}, errNotDelta
	}
	return w.Domain(), nil
}

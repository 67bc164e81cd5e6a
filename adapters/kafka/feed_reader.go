package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// feedReader reads one topic as this process's own reader (no consumer
// group: every replica sees every record), from where the topic ended when
// it started, decodes each record and hands it to every subscriber: the
// answer feed's and the delta feed's common part.
//
// The start is pinned to the listed end offsets before any subscriber is
// let in: franz-go's time-based reset falls back to a separate end-offset
// request for a partition with no recent record, and a record written
// between the two would be skipped. A topic that does not exist yet is read
// from its start once it appears: all it holds is new.
type feedReader[T any] struct {
	cl     *kgo.Client
	adm    *kadm.Client
	topic  string
	name   string // "answer feed": in logs and errors
	decode func(*kgo.Record) (T, error)
	log    *slog.Logger
	// tracer starts the delivery span of each record, the parent of what
	// the subscribers do with it (the gateway's socket write).
	tracer trace.Tracer
	// router, when set, says which partitions to read (answer routing);
	// follower reads them. Without, every partition is read.
	router   *Router
	follower *partitionFollower
	// read counts the records read, when set.
	read prometheus.Counter

	pinned chan struct{} // closed once the start offsets are set

	mu   sync.Mutex
	subs map[int]feedSub[T]
	next int
}

type feedSub[T any] struct {
	ctx context.Context
	fn  func(T)
}

func newFeedReader[T any](cl *kgo.Client, topic, name string, decode func(*kgo.Record) (T, error), log *slog.Logger, tracer trace.Tracer) feedReader[T] {
	return feedReader[T]{
		cl: cl, adm: kadm.NewClient(cl), topic: topic, name: name, decode: decode, log: log, tracer: tracer,
		pinned: make(chan struct{}), subs: map[int]feedSub[T]{},
	}
}

// Subscribe registers fn until ctx ends; fn is not called once ctx has
// ended. It waits until Run has pinned where the feed starts (the broker
// answered), so every record written after it returns reaches fn; it
// returns ctx's error if ctx ends first.
func (f *feedReader[T]) Subscribe(ctx context.Context, fn func(T)) error {
	select {
	case <-f.pinned:
	case <-ctx.Done():
		return fmt.Errorf("%s not started: %w", f.name, ctx.Err())
	}
	f.mu.Lock()
	id := f.next
	f.next++
	f.subs[id] = feedSub[T]{ctx: ctx, fn: fn}
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
	})
	return nil
}

// Run pins the start, then reads until ctx ends, then closes the client.
func (f *feedReader[T]) Run(ctx context.Context) error {
	defer f.cl.Close()
	if err := pinAtEnd(ctx, f.cl, f.adm, f.topic, f.log, f.name); err != nil {
		return nil //nolint:nilerr // stopped before the broker answered
	}
	if f.router != nil {
		// Every partition first, at once, as without a router (a gateway
		// owns none yet); the router narrows it from its next round.
		f.follower.readingAll()
		f.router.follow(f.follower)
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
func (f *feedReader[T]) Ready(ctx context.Context) error {
	select {
	case <-f.pinned:
	default:
		// A question answered before the feed reads could be missed.
		return fmt.Errorf("%s: not reading %s yet", f.name, f.topic)
	}
	return ping(ctx, f.cl)
}

func (f *feedReader[T]) deliver(r *kgo.Record) {
	ctx := r.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if f.read != nil {
		f.read.Inc()
	}
	ctx, span := f.tracer.Start(ctx, f.name+" deliver", trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	r.Context = ctx // decode hands the span's context on (domain.Trace)
	v, err := f.decode(r)
	if err != nil {
		f.log.Warn(f.name+": a record it cannot read; skipped", "partition", r.Partition, "offset", r.Offset, "err", err)
		return
	}
	f.mu.Lock()
	subs := make([]feedSub[T], 0, len(f.subs))
	for _, s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		// A subscriber may have ended its subscription (from fn itself,
		// say) since the list was taken.
		if s.ctx.Err() == nil {
			s.fn(v)
		}
	}
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

// routeBy has f read only the partitions r says (answer routing). The
// ends are listed through the router's client, never f's own: a listing
// that found the topic missing (before the gateway created it) left a
// franz-go client that then fetched nothing from the partitions added to
// it (seen on kfake).
func (f *feedReader[T]) routeBy(r *Router) {
	f.router, f.follower = r, newPartitionFollower(f.cl, kadm.NewClient(r.cl), f.topic)
}

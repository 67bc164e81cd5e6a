package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
// With a router (answer routing) it reads only the partitions the router
// says; without, every partition.
func NewAnswerFeed(cfg Config, log *slog.Logger, metrics *Metrics, router *Router) (*AnswerFeed, error) {
	fcfg := cfg
	fcfg.ClientID = cfg.ClientID + "-answer-feed"
	cl, err := NewClient(fcfg, log, metrics.client("answer-feed"),
		// For a topic that appears after the feed started.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Partitions added while a fetch waits join the next one: with
		// answer routing, a widened or newly owned partition is read
		// within this (franz-go's default, 5 s, would delay them so).
		kgo.FetchMaxWait(250*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	topic := domain.TopicName(cfg.TopicPrefix, domain.TypeAnswer)
	f := &AnswerFeed{newFeedReader(cl, topic, "answer feed", DecodeRecord, log, metrics.tracer())}
	f.read = answersRead(metrics)
	if router != nil {
		f.routeBy(router)
	}
	return f, nil
}

// Reply is where the answer to a question of session asked now must go
// for this feed to read it: a partition this gateway owns; unset when the
// feed reads every partition anyway (broadcast) or owns none.
func (f *AnswerFeed) Reply(session string) domain.Reply {
	if f.router == nil {
		return domain.Reply{}
	}
	return f.router.Reply(session)
}

// Widen reads every answer (and delta) committed from its return until
// release, whatever partition it was routed to: a session resumed here
// while an answer was routed to another gateway gets it. A no-op without
// a router.
func (f *AnswerFeed) Widen(ctx context.Context) (release func(), err error) {
	if f.router == nil {
		return func() {}, nil
	}
	return f.router.Widen(ctx)
}

// answersRead counts the answer records a gateway's feed reads, once per
// registry.
func answersRead(m *Metrics) prometheus.Counter {
	return registerOnce(m, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kchat", Subsystem: "gateway", Name: "answers_read_total",
		Help: "Answer records the gateway's answer feed read: with answer routing, about its own sessions' answers; in broadcast mode, every answer.",
	}))
}

// registerOnce registers c on m's registry, or returns the collector of
// the same name already there; c unregistered without a registry.
func registerOnce[C prometheus.Collector](m *Metrics, c C) C {
	if m == nil || m.reg == nil {
		return c
	}
	var dup prometheus.AlreadyRegisteredError
	if err := m.reg.Register(c); errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing
		}
	}
	return c
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

package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Publisher produces messages to the topic of their type and waits for the
// acknowledgement.
type Publisher struct {
	cl      *kgo.Client
	prefix  string
	timeout time.Duration
}

var _ ports.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher on cl, which must be an idempotent
// producer (see NewClient).
func NewPublisher(cl *kgo.Client, cfg Config) *Publisher {
	return &Publisher{cl: cl, prefix: cfg.TopicPrefix, timeout: cfg.DeliveryTimeout}
}

// Publish produces msg and waits for Kafka's acknowledgement, at most the
// delivery timeout. The caller's context is detached from the produce: a
// cancelled HTTP request must not fail an idempotent produce half way
// (franz-go #1217); the delivery timeout bounds the wait instead.
func (p *Publisher) Publish(ctx context.Context, msg domain.Message) (domain.Position, error) {
	res := p.PublishBatch(ctx, []domain.Message{msg})[0]
	return res.Position, res.Err
}

// PublishBatch produces every message at once and waits for all of them.
// No goroutine waits per call: the callbacks report on a channel with room
// for all of them, so one that comes after the timeout is dropped with it.
func (p *Publisher) PublishBatch(ctx context.Context, msgs []domain.Message) []ports.PublishResult {
	results := make([]ports.PublishResult, len(msgs))
	produceCtx := context.WithoutCancel(ctx)
	acks := make(chan produced, len(msgs))
	pending := 0
	for i, msg := range msgs {
		rec, err := NewRecord(domain.TopicName(p.prefix, msg.Type), msg)
		if err != nil {
			results[i].Err = err
			continue
		}
		pending++
		p.cl.TryProduce(produceCtx, rec, func(r *kgo.Record, err error) { acks <- produced{i, r, err} })
	}
	if pending == 0 {
		return results
	}
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	for ; pending > 0; pending-- {
		select {
		case a := <-acks:
			if a.err != nil {
				results[a.i].Err = produceError(msgs[a.i].MessageID, a.err)
				continue
			}
			results[a.i].Position = domain.Position{Topic: a.r.Topic, Partition: a.r.Partition, Offset: a.r.Offset}
		case <-timer.C:
			for i := range results {
				if results[i].Err == nil && results[i].Position.Topic == "" {
					results[i].Err = fmt.Errorf("produce %s: no acknowledgement within %s: %w", msgs[i].MessageID, p.timeout, domain.ErrUnavailable)
				}
			}
			return results
		}
	}
	return results
}

// produced is one record's outcome, the i-th of its batch.
type produced struct {
	i   int
	r   *kgo.Record
	err error
}

// produceError keeps non-retriable broker errors (bad record, no access) as
// they are and reports everything else, timeouts and outages, as
// domain.ErrUnavailable.
func produceError(id string, err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) && !ke.Retriable {
		return fmt.Errorf("produce %s: %w", id, err)
	}
	return fmt.Errorf("produce %s: %w: %w", id, domain.ErrUnavailable, err)
}

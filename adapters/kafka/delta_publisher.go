package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

const (
	// deltaBuffer bounds the deltas a process holds unacknowledged: past
	// it a delta is refused at once rather than queued behind a broker
	// that does not answer (a delta that late is worthless anyway).
	deltaBuffer = 1024
	// deltaDeliveryTimeout is how long the client keeps trying to write a
	// delta: the answer it belongs to is final within about that long.
	deltaDeliveryTimeout = 5 * time.Second
)

// DeltaPublisher writes answer deltas (domain.Delta) to the stream topic,
// keyed by session, in JSON (wire.Delta), with an idempotent producer of
// its own outside any transaction: the deltas of one answer keep their
// order in their partition, and none waits for the stage's transactions.
// Failures are logged and counted (kchat_stream_delta_failures_total).
type DeltaPublisher struct {
	cl      *kgo.Client
	topic   string
	log     *slog.Logger
	written prometheus.Counter
	failed  *prometheus.CounterVec
}

var _ ports.DeltaPublisher = (*DeltaPublisher)(nil)

// NewDeltaPublisher returns a publisher with a client of its own (an
// idempotent producer, as NewClient, holding at most deltaBuffer records
// and giving each up after deltaDeliveryTimeout), franz-go's metrics
// labelled client="stream". It does not dial. Close it with Close.
func NewDeltaPublisher(cfg Config, log *slog.Logger, m *Metrics) (*DeltaPublisher, error) {
	cl, err := NewClient(cfg, log, m.client("stream"),
		kgo.ClientID(cfg.ClientID+"-stream"),
		kgo.MaxBufferedRecords(deltaBuffer),
		kgo.RecordDeliveryTimeout(min(cfg.DeliveryTimeout, deltaDeliveryTimeout)),
	)
	if err != nil {
		return nil, err
	}
	written, failed := deltaMetrics(m)
	return &DeltaPublisher{cl: cl, topic: domain.StreamTopicName(cfg.TopicPrefix), log: log, written: written, failed: failed}, nil
}

// PublishDelta hands d to the producer at once (never waiting for room in
// its buffer) and waits for Kafka's acknowledgement until ctx ends; the
// caller bounds the wait with ctx. The produce itself is detached from
// ctx (a caller giving up must not fail an idempotent produce half way),
// so a delta the caller stopped waiting for may still be written, in
// order. Errors: the record was refused or failed (logged and counted
// here), or ctx's error when it ended first.
func (p *DeltaPublisher) PublishDelta(ctx context.Context, d domain.Delta) error {
	value, err := json.Marshal(wire.DeltaOf(d))
	if err != nil {
		return fmt.Errorf("encode delta: %w", err)
	}
	rec := &kgo.Record{Topic: p.topic, Key: []byte(d.SessionID), Value: value}
	if h, ok := askedAtHeader(d.Trace); ok {
		rec.Headers = append(rec.Headers, h)
	}
	if h, ok := replyRecordHeader(d.Reply); ok {
		rec.Headers = append(rec.Headers, h)
	}
	acked := make(chan error, 1)
	p.cl.TryProduce(context.WithoutCancel(ctx), rec, func(_ *kgo.Record, err error) {
		if err == nil {
			p.written.Inc()
		} else {
			reason := "failed"
			if errors.Is(err, kgo.ErrMaxBuffered) {
				reason = "buffer_full"
			}
			p.failed.WithLabelValues(reason).Inc()
			p.log.Warn("answer delta not written (the answer itself is not affected)",
				"reply_to", d.ReplyTo, "attempt", d.Attempt, "seq", d.Seq, "reason", reason, "err", err)
		}
		acked <- err
	})
	select {
	case err := <-acked:
		if err != nil {
			return fmt.Errorf("delta %s attempt %d seq %d: %w", d.ReplyTo, d.Attempt, d.Seq, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("delta %s attempt %d seq %d not acknowledged in time: %w", d.ReplyTo, d.Attempt, d.Seq, ctx.Err())
	}
}

// Close flushes what is buffered (bounded by ctx) and closes the client.
func (p *DeltaPublisher) Close(ctx context.Context) error { return CloseClient(ctx, p.cl) }

// deltaMetrics are the counts of deltas written and not written, the
// latter by reason (buffer_full, failed), registered once per registry.
func deltaMetrics(m *Metrics) (prometheus.Counter, *prometheus.CounterVec) {
	written := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kchat", Subsystem: "stream", Name: "deltas_written_total",
		Help: "Answer deltas Kafka acknowledged on the stream topic.",
	})
	failed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kchat", Subsystem: "stream", Name: "delta_failures_total",
		Help: "Answer deltas not written, by reason (buffer_full: too many unacknowledged; failed: the broker refused or did not answer in time). Deltas are best effort: the final answer is not affected.",
	}, []string{"reason"})
	if m == nil || m.reg == nil {
		return written, failed
	}
	var dup prometheus.AlreadyRegisteredError
	if err := m.reg.Register(written); errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(prometheus.Counter); ok {
			written = existing
		}
	}
	if err := m.reg.Register(failed); errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(*prometheus.CounterVec); ok {
			failed = existing
		}
	}
	return written, failed
}

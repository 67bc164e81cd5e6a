package kafka

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"
)

// NewClient returns the process's producing client: idempotent, acks=all,
// no linger (every request waits for its own acknowledgement, so lingering
// would only add latency), and records that fail after DeliveryTimeout.
// It does not dial: a broker that is down at startup is not an error.
// metrics may be nil.
func NewClient(cfg Config, log *slog.Logger, metrics *kprom.Metrics, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.ProduceRequestTimeout(cfg.DeliveryTimeout),
		kgo.WithLogger(kslog.New(log.With("component", "franz-go"))),
	}
	if metrics != nil {
		opts = append(opts, kgo.WithHooks(metrics))
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// closeClient flushes what is buffered (bounded by ctx) and closes cl.
func closeClient(ctx context.Context, cl *kgo.Client) error {
	err := cl.Flush(ctx)
	cl.Close()
	if err != nil {
		return fmt.Errorf("kafka flush on close: %w", err)
	}
	return nil
}

package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
)

// clientOpts are the options every client of this package starts from:
// the seed brokers, cfg.ClientID, cfg.Compression for what it produces,
// franz-go's logs into log and hooks (franz-go's metrics and the tracing
// hooks of Metrics.client). Each caller adds the options of its role.
func clientOpts(cfg Config, log *slog.Logger, hooks []kgo.Hook) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		// franz-go's default is snappy, which readers without a snappy
		// codec (kafka-python without python-snappy) cannot decode.
		kgo.ProducerBatchCompression(cfg.Compression.Codec()),
		kgo.WithLogger(kslog.New(log.With("component", "franz-go"))),
		// When a partition's leader dies, a client learns the new one
		// from a metadata refresh, which franz-go spaces at least this
		// far apart (5 s by default): with 5 s the producer's writes
		// stalled up to 8.6 s after a leader was killed, close to the
		// delivery timeout; with 500 ms, 3 to 4.3 s (docs/reliability.md).
		// Refreshes this frequent happen only while something is wrong.
		kgo.MetadataMinAge(500 * time.Millisecond),
		// An answer or a delta goes to its query's reply partition
		// (docs/design.md, "Answer routing"); everything else by key.
		kgo.RecordPartitioner(replyPartitioner(cfg)),
	}
	if len(hooks) > 0 {
		opts = append(opts, kgo.WithHooks(hooks...))
	}
	return opts
}

// NewClient returns the process's producing client: idempotent, acks=all,
// no linger (every request waits for its own acknowledgement, so lingering
// would only add latency), and records that fail after DeliveryTimeout.
// It does not dial: a broker that is down at startup is not an error.
// hooks may be nil.
func NewClient(cfg Config, log *slog.Logger, hooks []kgo.Hook, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append(clientOpts(cfg, log, hooks),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.ProduceRequestTimeout(cfg.DeliveryTimeout),
	)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// NewProducingClient is the process's producing client (NewClient) with
// franz-go's metrics labelled client="producer" on m's registry. A process
// has one: the publisher, the topic admin and the query publisher share it.
func NewProducingClient(cfg Config, log *slog.Logger, m *Metrics) (*kgo.Client, error) {
	return NewClient(cfg, log, m.client("producer"))
}

// CloseClient flushes what is buffered (bounded by ctx) and closes cl.
func CloseClient(ctx context.Context, cl *kgo.Client) error {
	err := cl.Flush(ctx)
	cl.Close()
	if err != nil {
		return fmt.Errorf("kafka flush on close: %w", err)
	}
	return nil
}

package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/kchat/kchat/ports"
)

// Module provides the process's producing client (closed, after a flush,
// when the app stops), the publisher, the topic admin and the consumer
// queue (whose Run the binary ties to the lifecycle). It needs a Config (and
// a QueueConfig for the queue), a *slog.Logger and a prometheus.Registerer.
var Module = fx.Module("kafka",
	fx.Provide(
		NewMetrics,
		newLifecycleClient,
		fx.Annotate(NewPublisher, fx.As(new(ports.Publisher)), fx.As(new(ports.QueryPublisher))),
		fx.Annotate(NewAnswerFeed, fx.As(fx.Self()), fx.As(new(ports.AnswerFeed))),
		fx.Annotate(NewTopicAdmin, fx.As(fx.Self()), fx.As(new(ports.TopicAdmin))),
		fx.Annotate(NewQueue, fx.As(fx.Self()), fx.As(new(ports.MessageQueue))),
	),
)

func newLifecycleClient(lc fx.Lifecycle, cfg Config, log *slog.Logger, metrics *Metrics) (*kgo.Client, error) {
	cl, err := NewClient(cfg, log, metrics.client("producer"))
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(func(ctx context.Context) error { return closeClient(ctx, cl) }))
	return cl, nil
}

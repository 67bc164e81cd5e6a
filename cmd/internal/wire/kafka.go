package wire

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/ports"
)

// topicsGroup collects the topics the services of a process need created.
const topicsGroup = `group:"kafka-topics"`

// Kafka provides the process's Kafka adapters, each built only when a
// service asks for it: the producing client (flushed and closed when the
// app stops), kchat's Kafka metrics, the publisher (ports.Publisher), the
// topic admin (ports.TopicAdmin; it creates the topics the services add
// with Topics), the answer feed (ports.AnswerFeed), the delta feed
// (ports.DeltaFeed), the consumer queue
// (ports.MessageQueue; it needs a kafka.QueueConfig) and the consumer
// groups' lag (kafka.ConsumerLag, lag.go).
func Kafka(cfg kafka.Config) fx.Option {
	return fx.Module("kafka",
		fx.Supply(cfg),
		fx.Provide(
			func(reg prometheus.Registerer, tr *tracing.Provider, hops *tracing.Hops) *kafka.Metrics {
				return kafka.NewMetrics(reg).Observe(tr, hops)
			},
			producingClient,
			fx.Annotate(kafka.NewPublisher, fx.As(fx.Self()), fx.As(new(ports.Publisher))),
			fx.Annotate(topicAdmin, fx.ParamTags(``, ``, ``, topicsGroup), fx.As(fx.Self()), fx.As(new(ports.TopicAdmin))),
			fx.Annotate(kafka.NewAnswerFeed, fx.As(fx.Self()), fx.As(new(ports.AnswerFeed))),
			fx.Annotate(kafka.NewDeltaFeed, fx.As(fx.Self()), fx.As(new(ports.DeltaFeed))),
			fx.Annotate(kafka.NewQueue, fx.As(fx.Self()), fx.As(new(ports.MessageQueue))),
			consumerLag,
		),
	)
}

// Topics adds the topics list names to those the process's topic admin
// creates (the same topic added twice is created once).
func Topics(list func(kafka.Config) []kafka.Topic) fx.Option {
	return fx.Provide(fx.Annotate(
		func(cfg kafka.Config) []kafka.Topic { return list(cfg) },
		fx.ResultTags(`group:"kafka-topics,flatten"`),
	))
}

func producingClient(lc fx.Lifecycle, cfg kafka.Config, log *slog.Logger, m *kafka.Metrics) (*kgo.Client, error) {
	cl, err := kafka.NewProducingClient(cfg, log, m)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(func(ctx context.Context) error { return kafka.CloseClient(ctx, cl) }))
	return cl, nil
}

func topicAdmin(cl *kgo.Client, cfg kafka.Config, log *slog.Logger, topics []kafka.Topic) *kafka.TopicAdmin {
	return kafka.NewTopicAdmin(cl, cfg, log, topics...)
}

package wire

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/domain"
)

// consumerLag is the process's kchat_kafka_consumer_group_lag_records
// (kafka.ConsumerLag), read at scrape time with the producing client: one
// collector however many services of the process own groups (the
// all-in-one runs the consumer and the answerer), each watching its own
// (watchQueueLag, stageLag).
func consumerLag(cl *kgo.Client, reg prometheus.Registerer, log *slog.Logger) *kafka.ConsumerLag {
	return kafka.NewConsumerLag(cl, reg, log, kafka.LagTimeout)
}

// watchQueueLag exports the lag of the consumer service's groups, one per
// topic (kafka.QueueConfig.GroupOf).
func watchQueueLag(l *kafka.ConsumerLag, cfg kafka.Config, q kafka.QueueConfig) {
	for _, typ := range domain.MessageTypes {
		l.Watch(q.GroupOf(typ), domain.TopicName(cfg.TopicPrefix, typ))
	}
}

// stageLag exports the lag of the answerer's stage groups: retrieve's on
// the query topic and, unless the generator is external, generate's on the
// prompt topic.
func stageLag(cfg AnswererConfig) fx.Option {
	return fx.Invoke(func(l *kafka.ConsumerLag, kcfg kafka.Config) {
		l.Watch(kafka.StageGroup(cfg.Stage, "retrieve"), domain.TopicName(kcfg.TopicPrefix, domain.TypeQuery))
		if !cfg.LLM.External() {
			l.Watch(kafka.StageGroup(cfg.Stage, "generate"), domain.TopicName(kcfg.TopicPrefix, domain.TypePrompt))
		}
	})
}

package wire

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/ports"
)

// ProducerConfig is the producer service's own configuration.
type ProducerConfig struct {
	Addr string `env:"KCHAT_PRODUCER_ADDR" envDefault:":8000"`
	HTTP httpapi.ServerConfig
}

// Validate checks the listener settings, naming the variable at fault.
func (c *ProducerConfig) Validate() error {
	c.HTTP.Addr = c.Addr
	return c.HTTP.Validate("KCHAT_PRODUCER_ADDR")
}

// ProducerServer is the producer's HTTP server, a type of its own so the
// all-in-one graph can hold one server per service.
type ProducerServer struct {
	*httpapi.Server
}

// Producer is the producer service: the submit use cases, its HTTP server
// and the loop that creates the pipeline topics. It needs Base and Kafka
// in the graph.
func Producer(cfg ProducerConfig) fx.Option {
	return fx.Module("producer",
		Topics(kafka.PipelineTopics),
		fx.Provide(
			func(p ports.Publisher) *app.SubmitMessage { return &app.SubmitMessage{Publisher: p} },
			func(p ports.Publisher) *app.SubmitBatch { return &app.SubmitBatch{Publisher: p} },
			func(t ports.TopicAdmin) *app.ListTopics { return &app.ListTopics{Topics: t} },
			func(topics *kafka.TopicAdmin, submit *app.SubmitMessage, batch *app.SubmitBatch, list *app.ListTopics, m *httpapi.HTTPMetrics, tr *tracing.Provider, log *slog.Logger) ProducerServer {
				s := httpapi.NewServer(cfg.HTTP, "kchat producer", []httpapi.Check{{Name: "kafka", Check: topics.Ready}}, log, httpapi.Tracing(tr, "producer"), m.Middleware("producer"))
				httpapi.NewProducer(submit, batch, list, log).Register(s.API())
				s.RegisterSeedRoutes("Producer", nil)
				return ProducerServer{s}
			},
		),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, topics *kafka.TopicAdmin) {
			runner.Hook(lc, sd, log, "kafka-topics", topics)
		}),
		fx.Invoke(func(lc fx.Lifecycle, s ProducerServer) { lc.Append(fx.StartStopHook(s.Start, s.Stop)) }),
	)
}

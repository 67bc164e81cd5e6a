package wire

import (
	"fmt"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/ports"
)

// ConsumerConfig is the consumer service's own configuration.
type ConsumerConfig struct {
	Addr string `env:"KCHAT_CONSUMER_ADDR" envDefault:":8001"`
	HTTP httpapi.ServerConfig
	// Lease is how long an ack=manual message stays invisible.
	Lease     time.Duration `env:"KCHAT_CONSUMER_LEASE" envDefault:"30s"`
	Queue     kafka.QueueConfig
	Profanity profanity.Config
}

// Validate checks every part, naming the variable at fault.
func (c *ConsumerConfig) Validate() error {
	c.HTTP.Addr = c.Addr
	if err := c.HTTP.Validate("KCHAT_CONSUMER_ADDR"); err != nil {
		return err
	}
	if c.Lease < time.Second || c.Lease > time.Hour {
		return fmt.Errorf("KCHAT_CONSUMER_LEASE must be between 1s and 1h, got %s", c.Lease)
	}
	if err := c.Queue.Validate(); err != nil {
		return err
	}
	return c.Profanity.Validate()
}

// ConsumerServer is the consumer's HTTP server.
type ConsumerServer struct {
	*httpapi.Server
}

// Consumer is the consumer service: the Kafka queue's consume loops, the
// fetch use cases with profanity filtering, and its HTTP server. It needs
// Base, Kafka and Censor in the graph.
func Consumer(cfg ConsumerConfig) fx.Option {
	return fx.Module("consumer",
		fx.Supply(cfg.Queue),
		fx.Provide(
			func(q ports.MessageQueue, c ports.Censor) *app.FetchNext {
				return &app.FetchNext{Queue: q, Censor: c, Lease: cfg.Lease}
			},
			func(q ports.MessageQueue) *app.Acknowledge { return &app.Acknowledge{Queue: q} },
			func(q ports.MessageQueue, c ports.Censor) *app.Browse { return &app.Browse{Queue: q, Censor: c} },
			func(q *kafka.Queue, kcfg kafka.Config, f *app.FetchNext, a *app.Acknowledge, b *app.Browse, m *httpapi.HTTPMetrics, tr *tracing.Provider, log *slog.Logger) ConsumerServer {
				s := httpapi.NewServer(cfg.HTTP, "kchat consumer", []httpapi.Check{{Name: "kafka", Check: q.Ready}}, log, httpapi.Tracing(tr, "consumer"), m.Middleware("consumer"))
				c := httpapi.NewConsumer(f, a, b, log)
				c.TopicPrefix = kcfg.TopicPrefix
				c.Register(s.API())
				s.RegisterSeedRoutes("Consumer", c.Delivered)
				return ConsumerServer{s}
			},
		),
		// The queue's hook is appended before the server's, so on stop the
		// server drains first and the queue then commits and leaves.
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, q *kafka.Queue) {
			runner.Hook(lc, sd, log, "kafka-queue", q)
		}),
		fx.Invoke(func(lc fx.Lifecycle, s ConsumerServer) { lc.Append(fx.StartStopHook(s.Start, s.Stop)) }),
		fx.Invoke(watchQueueLag),
	)
}

package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/httpapi"
	"github.com/kchat/kchat/adapters/kafka"
	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/cmd/internal/runner"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// AnswererConfig is the answerer's own configuration.
type AnswererConfig struct {
	Addr  string `env:"KCHAT_ANSWERER_ADDR" envDefault:":8003"`
	HTTP  httpapi.ServerConfig
	Stage kafka.StageConfig
	RAG   rag.Config
	LLM   llm.Config
	// Attempts is how many times a failing generator is tried per prompt.
	Attempts int `env:"KCHAT_LLM_ATTEMPTS" envDefault:"3"`
	// Backoff is the wait before the second attempt; it doubles after.
	Backoff time.Duration `env:"KCHAT_LLM_BACKOFF" envDefault:"1s"`
	// AnswerKey signs prompts and answers (AnswerKeyVar).
	AnswerKey string `env:"KCHAT_ANSWER_KEY"`
}

// Validate checks every part, naming the variable at fault.
func (c *AnswererConfig) Validate() error {
	c.HTTP.Addr = c.Addr
	if err := c.HTTP.Validate("KCHAT_ANSWERER_ADDR"); err != nil {
		return err
	}
	switch {
	case c.Attempts < 1 || c.Attempts > 20:
		return fmt.Errorf("KCHAT_LLM_ATTEMPTS must be between 1 and 20, got %d", c.Attempts)
	case c.Backoff < 0 || c.Backoff > time.Minute:
		return fmt.Errorf("KCHAT_LLM_BACKOFF must be between 0s and 1m, got %s", c.Backoff)
	}
	if _, err := AnswerKey(c.AnswerKey); err != nil {
		return err
	}
	for _, v := range []func() error{c.Stage.Validate, c.RAG.Validate, c.LLM.Validate} {
		if err := v(); err != nil {
			return err
		}
	}
	return nil
}

// AnswererServer is the answerer's HTTP server: health, readiness and,
// with the external generator, POST /answers (metrics are on the admin
// listener).
type AnswererServer struct {
	*httpapi.Server
}

// Answerer is the answerer worker: the retrieve stage (query → prompt) and,
// unless the generator is external, the generate stage (prompt → answer),
// each in Kafka transactions, plus health checks; with the external
// generator, POST /answers takes the workers' answers instead. Everything
// it writes is signed with the answer key. It needs Base, Kafka, Sessions
// and Censor in the graph.
func Answerer(cfg AnswererConfig) fx.Option {
	key, err := AnswerKey(cfg.AnswerKey)
	if err != nil {
		return fx.Error(err)
	}
	opts := []fx.Option{
		fx.Supply(cfg.Stage),
		Topics(kafka.PipelineTopics),
		Topics(kafka.DeadLetterTopics),
		// Created whatever the generator, so every gateway finds the topic
		// it reads deltas from (an external worker's answers stream none).
		Topics(kafka.StreamTopics),
		Retriever(cfg.RAG),
		Generator(cfg.LLM),
		stageLag(cfg),
		fx.Provide(
			func(s ports.SessionStore, r ports.Retriever, c ports.Censor) *app.PreparePrompt {
				return &app.PreparePrompt{Sessions: s, Retriever: r, Censor: c, TopK: cfg.RAG.TopK}
			},
		),
		check(func(topics *kafka.TopicAdmin) httpapi.Check { return httpapi.Check{Name: "kafka", Check: topics.Ready} }),
		fx.Provide(fx.Annotate(func(checks []httpapi.Check, m *httpapi.HTTPMetrics, tr *tracing.Provider, log *slog.Logger) AnswererServer {
			s := httpapi.NewServer(cfg.HTTP, "kchat answerer", checks, log, httpapi.Tracing(tr, "answerer"), m.Middleware("answerer"))
			s.RegisterRoot("Answerer") // a newcomer opening the port finds the docs
			return AnswererServer{s}
		}, fx.ParamTags(checks, ``, ``))),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, topics *kafka.TopicAdmin) {
			runner.Hook(lc, sd, log, "kafka-topics", topics)
		}),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, topics *kafka.TopicAdmin, kcfg kafka.Config, m *kafka.Metrics, uc *app.PreparePrompt) {
			stage := kafka.NewStage("retrieve", domain.TypeQuery, kcfg, cfg.Stage, log, m, signed(key, uc.Execute))
			runner.Hook(lc, sd, log, "retrieve-stage", afterTopics(topics, stage))
		}),
	}
	if !cfg.LLM.External() {
		opts = append(opts,
			fx.Provide(fx.Annotate(deltaPublisher, fx.As(new(ports.DeltaPublisher)))),
			fx.Provide(func(s ports.SessionStore, g ports.Generator, d ports.DeltaPublisher) *app.Answer {
				return &app.Answer{Sessions: s, Generator: g, Key: key, Attempts: cfg.Attempts, Backoff: cfg.Backoff, Deltas: d}
			}),
			fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, log *slog.Logger, topics *kafka.TopicAdmin, kcfg kafka.Config, m *kafka.Metrics, uc *app.Answer) {
				stage := kafka.NewStage("generate", domain.TypePrompt, kcfg, cfg.Stage, log, m, uc.Execute)
				runner.Hook(lc, sd, log, "generate-stage", afterTopics(topics, stage))
			}),
		)
	} else {
		opts = append(opts,
			fx.Provide(func(s ports.SessionStore, p ports.Publisher, log *slog.Logger) *httpapi.Answerer {
				return &httpapi.Answerer{Post: &app.PostAnswer{Sessions: s, Publisher: p, Key: key}, Log: log}
			}),
			fx.Invoke(func(s AnswererServer, h *httpapi.Answerer) { h.Register(s.API()) }),
		)
	}
	opts = append(opts, fx.Invoke(func(lc fx.Lifecycle, s AnswererServer) { lc.Append(fx.StartStopHook(s.Start, s.Stop)) }))
	return fx.Module("answerer", opts...)
}

// deltaPublisher is the generate stage's writer of answer deltas, with a
// client of its own, flushed and closed when the app stops.
func deltaPublisher(lc fx.Lifecycle, cfg kafka.Config, log *slog.Logger, m *kafka.Metrics) (*kafka.DeltaPublisher, error) {
	p, err := kafka.NewDeltaPublisher(cfg, log, m)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(p.Close))
	return p, nil
}

// signed signs what transform returns: the retrieve stage's prompts, which
// the generate stage answers only when signed (app.Answer).
func signed(key *domain.AnswerKey, transform kafka.Transform) kafka.Transform {
	return func(ctx context.Context, in domain.Message) (domain.Message, error) {
		out, err := transform(ctx, in)
		if err != nil {
			return out, err
		}
		return key.Sign(out), nil
	}
}

// afterTopics runs l once the topics it writes exist.
func afterTopics(topics *kafka.TopicAdmin, l runner.Loop) runner.Loop {
	return loopFunc(func(ctx context.Context) error {
		for !topics.Ensured() {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
		err := l.Run(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
}

type loopFunc func(ctx context.Context) error

func (f loopFunc) Run(ctx context.Context) error { return f(ctx) }

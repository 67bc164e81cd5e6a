package wire

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/llm"
	"github.com/kchat/kchat/adapters/profanity"
	"github.com/kchat/kchat/adapters/rag"
	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/ports"
)

// Retriever provides the knowledge-base index as ports.Retriever, closed
// when the app stops.
func Retriever(cfg rag.Config) fx.Option {
	return fx.Provide(fx.Annotate(func(lc fx.Lifecycle) (*rag.Index, error) {
		ix, err := rag.New(cfg)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(ix.Close))
		return ix, nil
	}, fx.As(new(ports.Retriever))))
}

// Generator provides the ports.Generator cfg.Generator names. With
// KCHAT_GENERATOR=external there is none (an outside service answers the
// prompts): the answerer leaves its generate stage out, and asking for a
// generator anyway fails the app's start with a message naming the
// variable rather than handing out a nil one.
func Generator(cfg llm.Config) fx.Option {
	return fx.Provide(func(reg prometheus.Registerer, tr *tracing.Provider, log *slog.Logger) (ports.Generator, error) {
		if cfg.External() {
			return nil, errors.New("KCHAT_GENERATOR=external: an outside service answers the prompts, so this process has no generator and must not run the generate stage")
		}
		g, err := llm.New(cfg)
		if err != nil {
			return nil, err
		}
		return llm.Instrument(g, llm.NewMetrics(reg), log.With("component", "generator")).Traced(tr.Tracer("adapters/llm")), nil
	})
}

// Censor provides the profanity filter as ports.Censor, once per process.
func Censor(cfg profanity.Config) fx.Option {
	return fx.Provide(fx.Annotate(func() *profanity.Censor { return profanity.New(cfg) }, fx.As(new(ports.Censor))))
}

package wire

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/kchat/kchat/adapters/tracing"
)

// Tracing provides the process's tracing (KCHAT_TRACING and the SDK's
// OTEL_* variables; service names the process), whose buffered spans are
// exported when the app stops, and the hop histograms of a question's way
// (docs/design.md, "Tracing").
func Tracing(cfg tracing.Config, service string) fx.Option {
	return fx.Provide(
		func(lc fx.Lifecycle) (*tracing.Provider, error) {
			p, err := tracing.New(context.Background(), cfg, service)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.StopHook(p.Shutdown))
			return p, nil
		},
		func(reg prometheus.Registerer) (*tracing.Hops, error) { return tracing.NewHops(reg) },
	)
}

// Package wire is kchat's fx wiring, the only place fx is used: one module
// per adapter (kafka.go, sessions.go, answering.go, …) and the graph of
// each service (producer.go, consumer.go, answerer.go, gateway.go), shared
// by the service's own binary and by the all-in-one cmd/kchat. Adapters
// expose plain constructors; a binary's whole graph reads in this folder
// (docs/design.md, "Layers").
package wire

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/kchat/kchat/adapters/httpapi"
)

// Base is what every kchat process has: slog logging (fx's own events
// included), the metrics registry, and a stop timeout long enough to drain
// HTTP and then flush Kafka.
func Base(log *slog.Logger, shutdown time.Duration) fx.Option {
	return fx.Options(
		fx.WithLogger(func() fxevent.Logger { return &fxevent.SlogLogger{Logger: log.With("component", "fx")} }),
		fx.StopTimeout(shutdown+10*time.Second),
		fx.Supply(log),
		fx.Provide(
			httpapi.NewRegistry,
			httpapi.NewHTTPMetrics,
			func(r *prometheus.Registry) prometheus.Registerer { return r },
		),
	)
}

// checks is the value group of readiness checks a service's /readyz runs.
const checks = `group:"checks"`

// check adds the readiness check fn returns (an httpapi.Check) to the
// process's group.
func check(fn any) fx.Option {
	return fx.Provide(fx.Annotate(fn, fx.ResultTags(checks)))
}

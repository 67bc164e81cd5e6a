package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
)

// Module provides the process's metrics registry and the producer handlers.
var Module = fx.Module("httpapi",
	fx.Provide(
		NewRegistry,
		func(r *prometheus.Registry) prometheus.Registerer { return r },
		NewProducer,
	),
)

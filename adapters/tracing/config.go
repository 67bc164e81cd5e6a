// Package tracing is kchat's OpenTelemetry tracing: the tracer provider a
// process hands to every adapter that makes spans, the W3C trace context
// that crosses HTTP, Kafka record headers and the gateway's internal
// routing, and the slog handler that puts trace_id and span_id on log lines
// (docs/design.md, "Tracing").
package tracing

import (
	"fmt"
	"strings"
)

// Exporters KCHAT_TRACING accepts.
const (
	// Off makes no spans: every tracer is OpenTelemetry's no-op.
	Off = "off"
	// OTLP exports spans with OTLP over HTTP. Where to, how sampled and
	// under which service name is what the SDK reads from the standard
	// OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT,
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
	// OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_SERVICE_NAME,
	// OTEL_RESOURCE_ATTRIBUTES, ...): the one exception to "only the config
	// loader reads the environment".
	OTLP = "otlp"
)

// Config turns tracing on.
type Config struct {
	// Exporter is off (the default) or otlp.
	Exporter string `env:"KCHAT_TRACING" envDefault:"off"`
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return strings.EqualFold(c.Exporter, OTLP) }

// Validate names the variable when the exporter is unknown.
func (c Config) Validate() error {
	switch strings.ToLower(c.Exporter) {
	case Off, OTLP, "":
		return nil
	}
	return fmt.Errorf("KCHAT_TRACING must be off or otlp, got %q", c.Exporter)
}

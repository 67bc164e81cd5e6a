package tracing

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Provider is a process's tracing: the tracer provider every adapter
// starts its spans from and the propagator that carries the trace context
// across processes. It is passed explicitly, never set as OpenTelemetry's
// global, so that tests of several processes in one (the all-in-one binary,
// the contract suites) do not share one.
type Provider struct {
	tp       trace.TracerProvider
	prop     propagation.TextMapPropagator
	shutdown func(context.Context) error
	enabled  bool
}

// Disabled is the provider of a process with tracing off: no-op tracers,
// nothing injected into headers, nothing exported.
func Disabled() *Provider {
	return &Provider{tp: noop.NewTracerProvider(), prop: propagation.NewCompositeTextMapPropagator(), shutdown: func(context.Context) error { return nil }}
}

// New returns the provider cfg asks for. With otlp, spans are batched and
// exported with OTLP over HTTP; the SDK reads the endpoint, headers,
// sampler and resource from the OTEL_* variables, and service names the
// process unless OTEL_SERVICE_NAME does. The exporter does not dial here:
// a collector that is down costs dropped spans, never a failed start.
func New(ctx context.Context, cfg Config, service string) (*Provider, error) {
	if !cfg.Enabled() {
		return Disabled(), nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("KCHAT_TRACING=otlp: the OTLP exporter: %w", err)
	}
	return newSDK(service, sdktrace.WithBatcher(exp))
}

// WithExporter returns a provider that hands every span to exp as it ends
// (synchronously: tests read exp right after the work), sampling all.
func WithExporter(service string, exp sdktrace.SpanExporter) (*Provider, error) {
	return newSDK(service, sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
}

func newSDK(service string, opts ...sdktrace.TracerProviderOption) (*Provider, error) {
	// The service name first, so that OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES (read by WithFromEnv) override it.
	res, err := resource.New(context.Background(),
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing resource (OTEL_RESOURCE_ATTRIBUTES?): %w", err)
	}
	// Without WithSampler the SDK reads OTEL_TRACES_SAMPLER and
	// OTEL_TRACES_SAMPLER_ARG (default: parentbased_always_on).
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithResource(res)}, opts...)...)
	return &Provider{
		tp:       tp,
		prop:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		shutdown: tp.Shutdown,
		enabled:  true,
	}, nil
}

// Enabled reports whether spans are recorded at all; adapters add their
// Kafka client hooks only then, so that tracing off costs nothing.
func (p *Provider) Enabled() bool { return p != nil && p.enabled }

// TracerProvider is the provider to start spans from.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return noop.NewTracerProvider()
	}
	return p.tp
}

// Tracer is the tracer of one instrumentation scope (an adapter package).
func (p *Provider) Tracer(scope string) trace.Tracer {
	return p.TracerProvider().Tracer("github.com/kchat/kchat/" + scope)
}

// Propagator carries the trace context: W3C traceparent/tracestate and
// baggage when tracing is on, nothing when it is off.
func (p *Provider) Propagator() propagation.TextMapPropagator {
	if p == nil {
		return propagation.NewCompositeTextMapPropagator()
	}
	return p.prop
}

// Shutdown exports what is buffered (bounded by ctx) and stops.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.shutdown(ctx)
}

// Parent returns the W3C traceparent of ctx's span, for a domain.Trace;
// empty when there is none.
func (p *Provider) Parent(ctx context.Context) string {
	if !p.Enabled() || !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get("traceparent")
}

// WithParent returns ctx with the remote span of traceparent (a
// domain.Trace's Parent) as the parent of the spans started from it.
func (p *Provider) WithParent(ctx context.Context, traceparent string) context.Context {
	if !p.Enabled() || traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

package llm

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Reasons a generator call failed, the failures metric's label.
const (
	// FailUnavailable: the model did not answer (connection refused, 5xx,
	// 429, a broken stream); retried.
	FailUnavailable = "unavailable"
	// FailRefused: the model refused the request as such (4xx), or its
	// answer is unreadable; not retried.
	FailRefused = "refused"
	// FailTimeout: no answer within KCHAT_LLM_TIMEOUT; retried.
	FailTimeout = "timeout"
)

// timeoutError marks a call cut by the generator's own timeout; its text
// is the wrapped error's.
type timeoutError struct{ error }

func (e timeoutError) Unwrap() error { return e.error }

// Metrics are the generator's calls, failures by reason, and latency.
type Metrics struct {
	calls    prometheus.Counter
	failures *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewMetrics registers the generator metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "answerer", Name: "generator_calls_total",
			Help: "Calls to the generator (each attempt of an answer is one).",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "answerer", Name: "generator_failures_total",
			Help: "Generator calls that failed, by reason: unavailable, refused, timeout.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kchat", Subsystem: "answerer", Name: "generator_duration_seconds",
			Help:    "Time of a generator call, to its whole answer or its failure.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
	}
	for _, r := range []string{FailUnavailable, FailRefused, FailTimeout} {
		m.failures.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.failures, m.duration)
	}
	return m
}

// Instrumented is a generator counted, timed and logged: a failing call
// is logged at WARN with its cause (the answer's error field alone would
// leave the operator of a model refusing connections in the dark).
type Instrumented struct {
	next    ports.Generator
	metrics *Metrics
	log     *slog.Logger
	tracer  trace.Tracer // nil: no span
}

var _ ports.Generator = (*Instrumented)(nil)

// Instrument wraps g.
func Instrument(g ports.Generator, m *Metrics, log *slog.Logger) *Instrumented {
	return &Instrumented{next: g, metrics: m, log: log}
}

// Traced makes each call a span of t, a child of the generate stage's.
func (g *Instrumented) Traced(t trace.Tracer) *Instrumented {
	g.tracer = t
	return g
}

// Unwrap returns the generator counted.
func (g *Instrumented) Unwrap() ports.Generator { return g.next }

// Generate calls the wrapped generator. A call whose ctx ended (the stage
// stopping) is timed but is not a failure of the generator.
func (g *Instrumented) Generate(ctx context.Context, prompt domain.Prompt, onChunk func(string)) (string, error) {
	g.metrics.calls.Inc()
	var span trace.Span
	if g.tracer != nil {
		ctx, span = g.tracer.Start(ctx, "generator call", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.Int("kchat.passages", len(prompt.Passages))))
		defer span.End()
	}
	start := time.Now()
	text, err := g.next.Generate(ctx, prompt, onChunk)
	took := time.Since(start)
	if span != nil && err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	g.metrics.duration.Observe(took.Seconds())
	if err != nil && ctx.Err() == nil {
		reason := FailureReason(err)
		g.metrics.failures.WithLabelValues(reason).Inc()
		g.log.WarnContext(ctx, "generator failed", "reason", reason, "err", err, "took", took)
	}
	return text, err
}

// FailureReason classifies a generator's error for the failures metric.
func FailureReason(err error) string {
	var te timeoutError
	switch {
	case errors.As(err, &te), errors.Is(err, context.DeadlineExceeded):
		return FailTimeout
	case errors.Is(err, domain.ErrUnavailable):
		return FailUnavailable
	}
	return FailRefused
}

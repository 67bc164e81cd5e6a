package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kchat/kchat/adapters/tracing"
)

// Each request is a span named by its method and route, continuing the
// caller's trace from its traceparent header; with tracing off there is
// no span.
func TestTracingMiddleware(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p, err := tracing.WithExporter("test", exp)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerConfig{}, "test", nil, slog.New(slog.DiscardHandler), Tracing(p, "test"))
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	req.Header.Set("traceparent", parent)
	s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	sp := spans[0]
	if sp.Name != "GET /readyz" {
		t.Errorf("span name %q, want %q", sp.Name, "GET /readyz")
	}
	if sp.SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || sp.Parent.SpanID().String() != "b7ad6b7169203331" {
		t.Errorf("span %s parent %s: not the caller's trace", sp.SpanContext.TraceID(), sp.Parent.SpanID())
	}
	if sp.SpanKind != trace.SpanKindServer {
		t.Errorf("span kind %v", sp.SpanKind)
	}

	off := NewServer(ServerConfig{}, "test", nil, slog.New(slog.DiscardHandler), Tracing(tracing.Disabled(), "test"))
	exp.Reset()
	off.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("tracing off: %d spans", n)
	}
}

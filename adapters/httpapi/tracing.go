package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/kchat/kchat/adapters/tracing"
)

// Tracing is the middleware that makes each request a span (otelhttp),
// continuing the caller's trace from its traceparent header, named by
// method and route ("POST /messages"; otelhttp names it again once the
// router has matched). With tracing off it is no middleware at all.
func Tracing(p *tracing.Provider, service string) func(http.Handler) http.Handler {
	if !p.Enabled() {
		return func(next http.Handler) http.Handler { return next }
	}
	return func(next http.Handler) http.Handler {
		return otelhttp.NewHandler(next, service,
			otelhttp.WithTracerProvider(p.TracerProvider()), otelhttp.WithPropagators(p.Propagator()),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + routeOf(r) }))
	}
}

// routeOf is the route pattern the router matched, or unmatched.
func routeOf(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
		return rc.RoutePattern()
	}
	return unmatched
}

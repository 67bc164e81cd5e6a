package httpapi

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// unmatched is the route label of a request no route matched (404s of
// scanners would otherwise make one series per raw path).
const unmatched = "unmatched"

// HTTPMetrics counts every service's HTTP requests, by the route pattern
// (never the raw path, which would be a series per session id) and status
// code, and times them.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers the HTTP metrics on reg, once per registry: the
// servers of the all-in-one share them, told apart by their service label.
// A nil reg keeps them unregistered.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by service, method, route pattern and status code (101: a WebSocket upgrade).",
		}, []string{"service", "method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kchat", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve an HTTP request, by service, method and route pattern (a WebSocket's: its upgrade).",
			Buckets: prometheus.DefBuckets,
		}, []string{"service", "method", "route"}),
	}
	m.requests = registerOnce(reg, m.requests)
	m.duration = registerOnce(reg, m.duration)
	return m
}

// registerOnce registers c on reg, or returns the collector of the same
// name already there.
func registerOnce[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	var dup prometheus.AlreadyRegisteredError
	if err := reg.Register(c); errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing
		}
	} else if err != nil {
		panic(err)
	}
	return c
}

// Middleware returns the chi middleware that measures service's requests.
// It reads the route pattern after routing, when chi has matched it.
func (m *HTTPMetrics) Middleware(service string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			route := routeOf(r)
			m.requests.WithLabelValues(service, r.Method, route, strconv.Itoa(sw.code())).Inc()
			m.duration.WithLabelValues(service, r.Method, route).Observe(time.Since(start).Seconds())
		})
	}
}

// statusWriter remembers the status code; Unwrap lets
// http.ResponseController reach flushing and hijacking underneath.
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush serves streams (Server-Sent Events) that assert http.Flusher.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack serves the WebSocket upgrade, which writes its 101 itself.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	switch {
	case w.hijacked && w.status == 0:
		return http.StatusSwitchingProtocols
	case w.status == 0:
		return http.StatusOK
	}
	return w.status
}

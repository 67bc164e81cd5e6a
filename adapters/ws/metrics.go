package ws

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the WebSocket endpoint's: open sockets, and frames each way
// by type.
type Metrics struct {
	open     prometheus.Gauge
	sent     *prometheus.CounterVec
	received *prometheus.CounterVec
	// Asked counts the questions taken (acknowledged) over WebSocket, and
	// Delivered the answers written to a socket: the gateway's counters
	// of every entry point, one label each; unregistered by default.
	Asked, Delivered prometheus.Counter
}

// NewMetrics registers the WebSocket metrics on reg (nil: unregistered, as
// the handler's default), once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		Asked:     prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered_asked"}),
		Delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered_delivered"}),
		open: registerOnce(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kchat", Subsystem: "ws", Name: "connections_open",
			Help: "Open WebSocket connections.",
		})),
		sent: registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "ws", Name: "frames_sent_total",
			Help: "Frames written to WebSocket clients, by type (session, ack, answer, answer_delta, question, history, error, pong).",
		}, []string{"type"})),
		received: registerOnce(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "ws", Name: "frames_received_total",
			Help: "Frames read from WebSocket clients, by type: query, ping, unknown (another type), invalid (not UTF-8 or not a JSON object).",
		}, []string{"type"})),
	}
}

// WithMetrics counts on m instead of the handler's unregistered metrics.
func WithMetrics(m *Metrics) Option {
	return func(h *Handler) { h.metrics = m }
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

// receivedType bounds the label of a client frame's type to the protocol's.
func receivedType(t string) string {
	switch t {
	case "query", "ping":
		return t
	}
	return "unknown"
}

// sentType is the protocol type of a server frame.
func sentType(frame any) string {
	switch f := frame.(type) {
	case sessionFrame:
		return f.Type
	case ackFrame:
		return f.Type
	case answerFrame:
		return f.Type
	case answerDeltaFrame:
		return f.Type
	case questionFrame:
		return f.Type
	case errorFrame:
		return f.Type
	case historyFrame:
		return f.Type
	case map[string]string:
		return f["type"]
	}
	return "other"
}

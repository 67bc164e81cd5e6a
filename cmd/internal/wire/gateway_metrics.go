package wire

import "github.com/prometheus/client_golang/prometheus"

// Entry points of a question, the label of the gateway's question and
// answer counters.
const (
	entryWebSocket = "websocket"
	entryChat      = "chat" // POST /chat, JSON or events
	entrySend      = "send" // the seed's POST /send
)

// gatewayMetrics are the gateway's counters of every entry point, defined
// here once and handed to each inbound adapter as its labelled counter.
type gatewayMetrics struct {
	asked, delivered, rateLimited *prometheus.CounterVec
}

func newGatewayMetrics(reg prometheus.Registerer) (*gatewayMetrics, error) {
	m := &gatewayMetrics{
		asked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "gateway", Name: "questions_asked_total",
			Help: "Questions the gateway took, by entry point: websocket, chat (POST /chat), send (the seed's POST /send).",
		}, []string{"entry"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "gateway", Name: "answers_delivered_total",
			Help: "Answers the gateway delivered, by entry point: websocket (an answer frame written), chat (POST /chat's answer).",
		}, []string{"entry"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "gateway", Name: "rate_limited_total",
			Help: "Questions refused by a rate limit, by limit: user (KCHAT_USER_RATE), address (KCHAT_ADDR_RATE).",
		}, []string{"limit"}),
	}
	for _, e := range []string{entryWebSocket, entryChat, entrySend} {
		m.asked.WithLabelValues(e)
	}
	m.delivered.WithLabelValues(entryWebSocket)
	m.delivered.WithLabelValues(entryChat)
	m.rateLimited.WithLabelValues("user")
	m.rateLimited.WithLabelValues("address")
	for _, c := range []prometheus.Collector{m.asked, m.delivered, m.rateLimited} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

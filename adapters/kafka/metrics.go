package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"github.com/twmb/franz-go/plugin/kprom"
	"go.opentelemetry.io/otel/trace"

	"github.com/kchat/kchat/adapters/tracing"
)

// Metrics holds kchat's own Kafka metrics and makes franz-go's client
// metrics (kprom), one set per client, told apart by a "client" label.
type Metrics struct {
	reg    prometheus.Registerer
	Joins  *prometheus.CounterVec
	Gaps   *prometheus.CounterVec
	Poison *prometheus.CounterVec
	// OtherReceiptKey counts receipts signed with another KCHAT_RECEIPT_KEY.
	OtherReceiptKey prometheus.Counter

	// tracing is the process's; kotel, set only when it is on, puts the
	// trace context in the headers of what the clients produce and starts
	// a span for what they fetch; hops times the answerer's stages.
	tracing *tracing.Provider
	kotel   *kotel.Tracer
	hops    *tracing.Hops
}

// Observe has every client made from m carry p's trace context in record
// headers (franz-go's kotel hooks, only when tracing is on), and the
// answerer's stages time their hops on hops (nil: not timed). Call it
// before any client is made.
func (m *Metrics) Observe(p *tracing.Provider, hops *tracing.Hops) *Metrics {
	m.tracing, m.hops = p, hops
	if p.Enabled() {
		m.kotel = kotel.NewTracer(kotel.TracerProvider(p.TracerProvider()), kotel.TracerPropagator(p.Propagator()))
	}
	return m
}

// tracer is this package's tracer: a no-op one when tracing is off.
func (m *Metrics) tracer() trace.Tracer {
	if m == nil {
		return (*tracing.Provider)(nil).Tracer("adapters/kafka")
	}
	return m.tracing.Tracer("adapters/kafka")
}

// hopTimer is the stages' hop histograms; nil when not timed.
func (m *Metrics) hopTimer() *tracing.Hops {
	if m == nil {
		return nil
	}
	return m.hops
}

// NewMetrics registers kchat's Kafka metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		Joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "consumer", Name: "group_joins_total",
			Help: "Consumer group joins (completed SyncGroup requests) per topic; one per process lifetime in steady state.",
		}, []string{"topic"}),
		Gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "consumer", Name: "retention_gaps_total",
			Help: "Offsets deleted by retention before the group consumed them.",
		}, []string{"topic"}),
		Poison: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "consumer", Name: "poison_records_total",
			Help: "Records that are not a valid envelope, delivered flagged.",
		}, []string{"topic"}),
		OtherReceiptKey: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kchat", Subsystem: "consumer", Name: "receipt_key_mismatch_total",
			Help: "Receipts signed with another KCHAT_RECEIPT_KEY: some process of the deployment has a different key.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Joins, m.Gaps, m.Poison, m.OtherReceiptKey)
	}
	return m
}

// client returns the hooks of one client: franz-go's metrics (with a
// registry) and the tracing hooks (with tracing on); none for a nil m.
func (m *Metrics) client(name string) []kgo.Hook {
	if m == nil {
		return nil
	}
	var hooks []kgo.Hook
	if m.reg != nil {
		hooks = append(hooks, kprom.NewMetrics("kchat", kprom.Registerer(m.reg), kprom.WithStaticLabel(prometheus.Labels{"client": name})))
	}
	if m.kotel != nil {
		hooks = append(hooks, m.kotel)
	}
	return hooks
}

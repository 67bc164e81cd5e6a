package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/plugin/kprom"
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

// client returns franz-go's metrics for one client; nil without a registry.
func (m *Metrics) client(name string) *kprom.Metrics {
	if m == nil || m.reg == nil {
		return nil
	}
	return kprom.NewMetrics("kchat", kprom.Registerer(m.reg), kprom.WithStaticLabel(prometheus.Labels{"client": name}))
}

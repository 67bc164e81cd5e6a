package tracing

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchat/kchat/domain"
)

// Hops of a question, the label of kchat_pipeline_hop_duration_seconds.
const (
	HopQueryToPrompt  = "query_to_prompt"  // query record → prompt record (the retrieve stage)
	HopPromptToAnswer = "prompt_to_answer" // prompt record → answer record (the generate stage)
	HopAnswerToSocket = "answer_to_socket" // answer record → answer frame written (the gateway)
)

// Hops are the per-hop latency histograms of the pipeline. Each hop is
// timed where it ends, from the timestamp of the record it started from
// (set by the producing client): across processes it assumes clocks in
// step, as Kafka's own CreateTime does. Observing a nil *Hops is a no-op.
type Hops struct {
	hop        *prometheus.HistogramVec
	endToEnd   prometheus.Histogram
	firstDelta prometheus.Histogram
}

// buckets span a cached answer's milliseconds to a slow model's tens of
// seconds.
var buckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewHops registers the histograms on reg once (a process that runs the
// answerer and the gateway shares them) and every hop's series at zero, so
// that a dashboard finds them before the first question.
func NewHops(reg prometheus.Registerer) (*Hops, error) {
	h := &Hops{
		hop: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kchat", Subsystem: "pipeline", Name: "hop_duration_seconds",
			Help:    "Time a question spends in each hop, from the record the hop starts from to the record (or socket frame) it ends with: query_to_prompt, prompt_to_answer (the answerer), answer_to_socket (the gateway).",
			Buckets: buckets,
		}, []string{"hop"}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kchat", Subsystem: "pipeline", Name: "end_to_end_duration_seconds",
			Help:    "From the question's query record to its answer frame written to a socket.",
			Buckets: buckets,
		}),
		firstDelta: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kchat", Subsystem: "pipeline", Name: "first_delta_duration_seconds",
			Help:    "From the question's query record to the first streamed delta of its answer written to a socket.",
			Buckets: buckets,
		}),
	}
	var err error
	if h.hop, err = registerOnce(reg, h.hop); err != nil {
		return nil, err
	}
	if h.endToEnd, err = registerOnce(reg, h.endToEnd); err != nil {
		return nil, err
	}
	if h.firstDelta, err = registerOnce(reg, h.firstDelta); err != nil {
		return nil, err
	}
	for _, hop := range []string{HopQueryToPrompt, HopPromptToAnswer, HopAnswerToSocket} {
		h.hop.WithLabelValues(hop)
	}
	return h, nil
}

// Hop observes one hop that began at since and ends now.
func (h *Hops) Hop(hop string, since time.Time) {
	if h == nil || since.IsZero() {
		return
	}
	h.hop.WithLabelValues(hop).Observe(time.Since(since).Seconds())
}

// Delivered observes an answer written to a socket: its last hop and the
// question's whole way.
func (h *Hops) Delivered(t domain.Trace) {
	if h == nil {
		return
	}
	h.Hop(HopAnswerToSocket, t.PublishedAt)
	if !t.AskedAt.IsZero() {
		h.endToEnd.Observe(time.Since(t.AskedAt).Seconds())
	}
}

// FirstDelta observes the first delta of an answer written to a socket.
func (h *Hops) FirstDelta(t domain.Trace) {
	if h == nil || t.AskedAt.IsZero() {
		return
	}
	h.firstDelta.Observe(time.Since(t.AskedAt).Seconds())
}

// registerOnce registers c on reg, or returns the collector of the same
// name already there; nil reg leaves c unregistered.
func registerOnce[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	var dup prometheus.AlreadyRegisteredError
	if err := reg.Register(c); errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing, nil
		}
		return c, err
	} else if err != nil {
		return c, err
	}
	return c, nil
}

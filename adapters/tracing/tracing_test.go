package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kchat/kchat/adapters/tracing"
	"github.com/kchat/kchat/domain"
)

func TestConfig(t *testing.T) {
	for _, v := range []string{"", "off", "otlp", "OTLP"} {
		if err := (tracing.Config{Exporter: v}).Validate(); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	err := (tracing.Config{Exporter: "jaeger"}).Validate()
	if err == nil || !strings.Contains(err.Error(), "KCHAT_TRACING") {
		t.Errorf("jaeger: %v, want an error naming KCHAT_TRACING", err)
	}
	if (tracing.Config{Exporter: "off"}).Enabled() || !(tracing.Config{Exporter: "otlp"}).Enabled() {
		t.Error("Enabled")
	}
}

// Off by default: no spans recorded, nothing injected, no exporter made.
func TestOffIsNoop(t *testing.T) {
	p, err := tracing.New(context.Background(), tracing.Config{Exporter: "off"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := p.Tracer("x").Start(context.Background(), "s")
	if span.IsRecording() || p.Enabled() || p.Parent(ctx) != "" {
		t.Error("tracing off records or injects")
	}
	if got := p.WithParent(ctx, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"); got != ctx {
		t.Error("tracing off extracts a parent")
	}
}

// A span's traceparent, carried in a domain.Trace, makes the parent of
// the next process's span.
func TestParentRoundTrip(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p, err := tracing.WithExporter("test", exp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, a := p.Tracer("x").Start(context.Background(), "a")
	parent := p.Parent(ctx)
	a.End()
	if !strings.HasPrefix(parent, "00-"+a.SpanContext().TraceID().String()+"-"+a.SpanContext().SpanID().String()) {
		t.Fatalf("traceparent %q does not name span a", parent)
	}
	_, b := p.Tracer("x").Start(p.WithParent(context.Background(), parent), "b")
	b.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[1].Parent.SpanID() != a.SpanContext().SpanID() {
		t.Fatalf("b's parent is not a: %+v", spans)
	}
	if spans[0].Resource.String() == "" || !strings.Contains(spans[0].Resource.String(), "service.name=test") {
		t.Errorf("resource %s lacks the service name", spans[0].Resource)
	}
}

// Lines logged inside a span carry its ids; others do not.
func TestLogHandler(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p, err := tracing.WithExporter("test", exp)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "test")
	ctx, span := p.Tracer("x").Start(context.Background(), "s")
	log.InfoContext(ctx, "inside")
	span.End()
	log.Info("outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var in, out map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &out); err != nil {
		t.Fatal(err)
	}
	if in["trace_id"] != span.SpanContext().TraceID().String() || in["span_id"] != span.SpanContext().SpanID().String() || in["service"] != "test" {
		t.Errorf("inside the span: %v", in)
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("outside any span: %v", out)
	}
}

// The hop histograms exist before any observation, register once per
// registry (the all-in-one's answerer and gateway share them), and time
// each hop from the record it started from.
func TestHops(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := tracing.NewHops(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tracing.NewHops(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "kchat_pipeline_hop_duration_seconds"); n != 3 {
		t.Fatalf("%d hop series before any question, want 3", n)
	}
	a.Hop(tracing.HopQueryToPrompt, time.Now().Add(-2*time.Second))
	b.Delivered(domain.Trace{AskedAt: time.Now().Add(-3 * time.Second), PublishedAt: time.Now().Add(-time.Second)})
	b.FirstDelta(domain.Trace{AskedAt: time.Now().Add(-500 * time.Millisecond)})
	b.Delivered(domain.Trace{}) // unknown times: not observed
	var nilHops *tracing.Hops
	nilHops.Hop(tracing.HopPromptToAnswer, time.Now()) // no-op

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]float64{}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			sums[name], counts[name] = m.GetHistogram().GetSampleSum(), m.GetHistogram().GetSampleCount()
		}
	}
	check := func(name string, n uint64, atLeast float64) {
		t.Helper()
		if counts[name] != n || sums[name] < atLeast || sums[name] > atLeast+1 {
			t.Errorf("%s: count %d sum %.3f, want %d around %.1f s", name, counts[name], sums[name], n, atLeast)
		}
	}
	check("kchat_pipeline_hop_duration_seconds/query_to_prompt", 1, 2)
	check("kchat_pipeline_hop_duration_seconds/answer_to_socket", 1, 1)
	check("kchat_pipeline_hop_duration_seconds/prompt_to_answer", 0, 0)
	check("kchat_pipeline_end_to_end_duration_seconds", 1, 3)
	check("kchat_pipeline_first_delta_duration_seconds", 1, 0.5)
}

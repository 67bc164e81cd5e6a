package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestSinkCountsTheSpansTheSDKExports: kbench's OTLP receiver counts every
// span the services' exporter (the SDK's OTLP/HTTP one, batching) sends,
// plain or gzipped, across resources' scopes; what is no OTLP protobuf is
// refused and counted apart.
func TestSinkCountsTheSpansTheSDKExports(t *testing.T) {
	for _, compression := range []otlptracehttp.Compression{otlptracehttp.NoCompression, otlptracehttp.GzipCompression} {
		sink := &otlpSink{}
		srv := httptest.NewServer(sink)
		ctx := context.Background()
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"), otlptracehttp.WithCompression(compression))
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
		for scope, n := range map[string]int{"stage": 5, "ws": 3} {
			tr := tp.Tracer(scope)
			for range n {
				ctx, parent := tr.Start(ctx, "parent")
				_, child := tr.Start(ctx, "child")
				child.End()
				parent.End()
			}
		}
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if st := sink.stats(); st.Spans != 16 || st.Requests == 0 || st.Bad != 0 || st.Bytes == 0 {
			t.Errorf("compression %v: received %+v, want 16 spans and no bad request", compression, st)
		}
		resp, err := http.Post(srv.URL+"/v1/traces", "application/x-protobuf", strings.NewReader("\x0a\x05ab")) // a field longer than the body
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || sink.stats().Bad != 1 {
			t.Errorf("a malformed request: %d, %+v", resp.StatusCode, sink.stats())
		}
		srv.Close()
	}
}

func TestMedianOf(t *testing.T) {
	for _, tt := range []struct {
		give []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 10}, 3.5}} {
		if got := medianOf(tt.give); got != tt.want {
			t.Errorf("medianOf(%v) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// TestTracingRowsJudgeOffAgainstTheBuildWithoutTracing: the goal row is
// tracing off's median services CPU per question against the baseline
// build's, judged against 1.05× (the load generator's CPU, the same in
// every variant, does not dilute it); tracing on is compared with off, no goal; the
// runs are in the notes and benchmarks.md, and a missing baseline is said.
func TestTracingRowsJudgeOffAgainstTheBuildWithoutTracing(t *testing.T) {
	variant := func(name string, cpu ...float64) TracingVariant {
		v := TracingVariant{Name: name, Build: "working tree"}
		for i, c := range cpu {
			v.Runs = append(v.Runs, TracingRun{Order: i + 1, ServicesCPU: c, CPUPerOp: c + 1000, Answered: 100, Due: 100, Latency: Percentiles{P50: 40, P99: 90}})
			if name == tracingOn {
				v.Runs[i].Sink, v.Runs[i].SpansPerQuestion = &SinkStats{Spans: 1200}, 12
			}
		}
		v.summarize()
		return v
	}
	for _, tt := range []struct {
		off     []float64
		wantMet bool
	}{{off: []float64{103, 110, 101}, wantMet: true}, {off: []float64{106, 112, 101}, wantMet: false}} {
		res := &TracingResult{Sessions: 1000, RunsPerVariant: 3,
			Base:     TracingBase{Commit: "86536f8aaaa", TracingCommit: "e07c4c2bbbb", OtherChanges: []string{"adapters/kafka/lag.go"}},
			Variants: []TracingVariant{variant(tracingBaseline, 100, 104, 98), variant(tracingOff, tt.off...), variant(tracingOn, 160, 150, 155)}}
		got := tracingRows(res)
		if len(got) != 2 {
			t.Fatalf("%d rows, want 2: %+v", len(got), got)
		}
		goal, on := got[0], got[1]
		if goal.Kchat != medianOf(tt.off) || goal.Baseline != 100 || goal.Goal != "≤ 1.05×" ||
			goal.Met == nil || *goal.Met != tt.wantMet || !strings.Contains(goal.Note, "baseline 100.0, 104.0, 98.0 µs") ||
			!strings.Contains(goal.Note, fmt.Sprintf("with the load generator %s vs 1100 µs", fmtNum(1000+medianOf(tt.off)))) {
			t.Errorf("off %v: goal row %+v, want met=%v", tt.off, goal, tt.wantMet)
		}
		if on.Kchat != 155 || on.Baseline != medianOf(tt.off) || on.Met != nil || !strings.Contains(on.Note, "12.0 spans per question") ||
			strings.Contains(on.Note+goal.Note, "fell behind") {
			t.Errorf("on row %+v", on)
		}
		md := markdown(&Results{Tracing: res, Rows: got})
		for _, r := range got {
			if !strings.Contains(md, "| "+r.Measure+" |") {
				t.Errorf("benchmarks.md lacks the row %q", r.Measure)
			}
		}
		for _, want := range []string{"## tracing", "commit 86536f8, the parent of e07c4c2", "adapters/kafka/lag.go", "| on | working tree | 155.0 | #1: 160.0, #2: 150.0, #3: 155.0 | 6% | 1155 |"} {
			if !strings.Contains(md, want) {
				t.Errorf("benchmarks.md lacks %q:\n%s", want, md)
			}
		}
	}
	// A run that fell behind (a saturated machine) is pointed out.
	slow := variant(tracingOn, 150)
	slow.Runs[0].Answered = 60
	if got := tracingRows(&TracingResult{Variants: []TracingVariant{variant(tracingOff, 100), slow}}); !strings.Contains(got[1].Note, "**1 run(s) fell behind**") ||
		strings.Contains(got[0].Note, "fell behind") {
		t.Errorf("a run that fell behind is not pointed out: %+v", got)
	}
	res := &TracingResult{Base: TracingBase{Skipped: "no history"}, Variants: []TracingVariant{variant(tracingOff, 100), variant(tracingOn, 150)}}
	got := tracingRows(res)
	if len(got) != 2 || got[0].Met != nil || got[0].Baseline != 0 || !strings.Contains(got[0].Note, "no baseline: no history") {
		t.Errorf("without a baseline: %+v", got)
	}
	if !strings.Contains(markdown(&Results{Tracing: res, Rows: got}), "could not be built here: no history") {
		t.Error("benchmarks.md does not say why there is no baseline")
	}
}

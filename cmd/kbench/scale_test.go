package main

import (
	"strings"
	"testing"
	"time"
)

func TestMetricValueReadsTheSeriesAsTheGatewayPrintsIt(t *testing.T) {
	text := `# HELP kchat_gateway_answers_read_total Answer records the gateway's answer feed read.
# TYPE kchat_gateway_answers_read_total counter
kchat_gateway_answers_read_total 1234
kchat_gateway_answers_read_total_extra 9
kchat_gateway_answer_partitions_owned{topic="x"} 5
kchat_gateway_answer_partitions_owned 2
go_gc_duration_seconds{quantile="0.5"} 1.5e-05
`
	for _, tt := range []struct {
		series string
		want   float64
		ok     bool
	}{
		{"kchat_gateway_answers_read_total", 1234, true},
		{"kchat_gateway_answer_partitions_owned", 2, true},
		{`go_gc_duration_seconds{quantile="0.5"}`, 1.5e-5, true},
		{"kchat_gateway_answers", 0, false},
		{"absent", 0, false},
	} {
		if got, ok := metricValue(text, tt.series); got != tt.want || ok != tt.ok {
			t.Errorf("metricValue(%q) = %v, %v; want %v, %v", tt.series, got, ok, tt.want, tt.ok)
		}
	}
}

func TestScaleMeasureFromWaitsPastTheGrace(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)
	if got := scaleMeasureFrom(t0, 5*time.Second, t0.Add(-2*time.Second)); !got.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("settled long before: window from %s, want after the warm-up", got.Sub(t0))
	}
	if got := scaleMeasureFrom(t0, 2*time.Second, t0.Add(-time.Second)); !got.Equal(t0.Add(scaleSettle - time.Second)) {
		t.Errorf("settled just before: window from %s, want %s after settling", got.Sub(t0), scaleSettle)
	}
	if scaleSettle <= scaleGrace {
		t.Errorf("the window may start within the grace: settle %s, grace %s", scaleSettle, scaleGrace)
	}
}

// TestScaleRowsCompareRoutingWithBroadcast: per gateway count, the mean
// answer records a gateway read and the CPU per question, routing vs
// broadcast; the goals (each gateway about answers ÷ N, CPU at the most
// gateways ≤ 1.1× that at one) are judged on routing, and benchmarks.md
// lists every run.
func TestScaleRowsCompareRoutingWithBroadcast(t *testing.T) {
	run := func(order int, routing string, n int, cpu float64, read ...float64) ScaleRun {
		return ScaleRun{Order: order, Routing: routing, Gateways: n, Due: 4000, Answered: 4000, Read: read,
			Owned: make([]float64, n), OwnedAfter: make([]float64, n), ServicesCPU: cpu, CPUPerOp: cpu + 500, Latency: Percentiles{P50: 20, P99: 60}}
	}
	for _, tt := range []struct {
		cpu4     float64
		read4    []float64
		wantRead bool
		wantCPU  bool
	}{
		{cpu4: 1050, read4: []float64{1000, 1000, 990, 1010}, wantRead: true, wantCPU: true},
		{cpu4: 1200, read4: []float64{1000, 1400, 1000, 1000}, wantRead: false, wantCPU: false},
	} {
		res := &ScaleResult{Sessions: 200, Rate: 200, Partitions: 8, Gateways: []int{1, 2, 4}, Runs: []ScaleRun{
			run(1, scaleKchat, 1, 1000, 4000), run(2, scaleBroadcast, 1, 1000, 4000),
			run(3, scaleBroadcast, 2, 1300, 4000, 4000), run(4, scaleKchat, 2, 1020, 2000, 2000),
			run(5, scaleKchat, 4, tt.cpu4, tt.read4...), run(6, scaleBroadcast, 4, 1900, 4000, 4000, 4000, 4000),
		}}
		res.Runs[4].Owned, res.Runs[4].OwnedAfter = []float64{2, 2, 2, 2}, []float64{2, 2, 2, 2}
		rows := scaleRows(res)
		if len(rows) != 7 {
			t.Fatalf("%d rows, want 7: %+v", len(rows), rows)
		}
		read2, cpu2, read4, goal := rows[2], rows[3], rows[4], rows[6]
		if read2.Kchat != 2000 || read2.Baseline != 4000 || read2.Ratio != 0.5 || read2.Met == nil || !*read2.Met {
			t.Errorf("2 gateways, read row %+v", read2)
		}
		if cpu2.Kchat != 1020 || cpu2.Baseline != 1300 || cpu2.Met != nil || strings.Contains(cpu2.Note, "fell behind") {
			t.Errorf("2 gateways, CPU row %+v", cpu2)
		}
		if read4.Met == nil || *read4.Met != tt.wantRead || !strings.Contains(read4.Note, "4000 ÷ 4 = 1000") {
			t.Errorf("4 gateways read %v: row %+v, want met=%v", tt.read4, read4, tt.wantRead)
		}
		if goal.Kchat != tt.cpu4 || goal.Baseline != 1000 || goal.Goal != "≤ 1.1×" || goal.Met == nil || *goal.Met != tt.wantCPU ||
			!strings.Contains(goal.Note, "broadcast: 1000 µs at 1, 1900 µs at 4 (1.90×)") {
			t.Errorf("CPU goal row %+v, want met=%v", goal, tt.wantCPU)
		}
		md := markdown(&Results{Scale: res, Rows: rows})
		for _, want := range []string{"## scale", "| 5 | 4 | routing | 2, 2, 2, 2 | 4000 / 4000 |", "| 6 | 4 | broadcast | — | 4000 / 4000 | 4000, 4000, 4000, 4000 | 4.00 | 1900 |"} {
			if !strings.Contains(md, want) {
				t.Errorf("benchmarks.md lacks %q:\n%s", want, md)
			}
		}
		for _, r := range rows {
			if !strings.Contains(md, "| "+r.Measure+" |") {
				t.Errorf("benchmarks.md lacks the row %q", r.Measure)
			}
		}
	}
	// A run that fell behind is pointed out; a short run (1 and 2
	// gateways) judges 2 against 1.
	slow := &ScaleResult{Rate: 100, Gateways: []int{1, 2}, Runs: []ScaleRun{
		run(1, scaleKchat, 1, 1000, 4000), run(2, scaleBroadcast, 1, 1000, 4000),
		run(3, scaleBroadcast, 2, 1000, 4000, 4000), run(4, scaleKchat, 2, 1000, 2000, 2000)}}
	slow.Runs[3].Answered = 3000
	rows := scaleRows(slow)
	if len(rows) != 5 || !strings.Contains(rows[3].Note, "**1 run(s) fell behind**") || !strings.Contains(rows[4].Measure, "2 gateways ÷ 1") {
		t.Errorf("short run rows: %+v", rows)
	}
	if scaleRows(nil) != nil {
		t.Error("rows without a scale result")
	}
}

func TestScaleOrderAlternates(t *testing.T) {
	if a, b := scaleOrder(0), scaleOrder(1); a[0] != scaleKchat || b[0] != scaleBroadcast || a[1] != b[0] {
		t.Errorf("orders %v, %v", a, b)
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// medianRun is a run of the produce, chat, huma and (when memKiB > 0)
// memory scenarios, with the figures the median tests vary.
type medianRun struct {
	p50, p50Base float64 // produce p50 at 50%, kchat and baseline
	huma         float64 // kchat's ns/op against the baseline's 1000
	chatDup      int     // duplicate answers in kchat's chat run
	memKiB       float64 // kchat's KiB per idle socket against gorilla's 2×
}

func (m medianRun) results(started time.Time) *Results {
	tp := Throughput{PerSecond: 1000, CPUPerOp: 100}
	ol := func(p50 float64) OpenLoop { return OpenLoop{Rate: 100, Latency: Percentiles{P50: p50}} }
	r := &Results{Started: started, Finished: started.Add(time.Hour),
		Produce: &ProduceResult{Kchat: map[string]Throughput{"1": tp, "64": tp}, Baseline: map[string]Throughput{"1": tp, "64": tp},
			Latency: []LatencyPair{{Load: "50%", Kchat: ol(m.p50), Baseline: ol(m.p50Base)}}},
		Chat: &ChatResult{Sessions: 1000,
			Kchat: ChatRun{Latency: Percentiles{P50: 30, P99: 80}, CPUPerOp: 120, Hops: Hops{Matched: 100, Duplicates: m.chatDup}},
			Chain: ChatRun{Latency: Percentiles{P50: 28, P99: 70}, CPUPerOp: 100, Hops: Hops{Matched: 100}},
			Plain: ChatRun{Latency: Percentiles{P50: 25, P99: 60}, CPUPerOp: 80, Hops: Hops{Matched: 100}}},
		Huma: &HumaResult{Kchat: HandlerBench{NsPerOp: m.huma}, Baseline: HandlerBench{NsPerOp: 1000}},
	}
	if m.memKiB > 0 {
		r.Memory = &MemoryResult{Connections: 10, Kchat: MemoryRun{PerConnKiB: m.memKiB}, Baseline: MemoryRun{PerConnKiB: 2 * m.memKiB}}
	}
	return r
}

func rowByMeasure(t *testing.T, rows []Row, scenario, measure string) (int, Row) {
	t.Helper()
	for i, r := range rows {
		if r.Scenario == scenario && r.Measure == measure {
			return i, r
		}
	}
	t.Fatalf("no row %s / %s", scenario, measure)
	return 0, Row{}
}

// TestMedianResultsJudgeTheMedians: each figure is the median over the
// runs that have it, the ratio that of the medians, the goal decided
// again on them (not a vote of the runs), a count that must be 0 in
// every run the highest, and what a goal asks beyond its figures held in
// every run.
func TestMedianResultsJudgeTheMedians(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	runs := []*Results{
		// p50: 1.2 ≤ 1.0 + 0.3, met; huma 1.1×, met
		medianRun{p50: 1.2, p50Base: 1.0, huma: 1100}.results(t0),
		// p50: 1.5 ≤ 1.3 + 0.3, met; huma 1.3×, missed; a duplicate; memory
		medianRun{p50: 1.5, p50Base: 1.3, huma: 1300, chatDup: 1, memKiB: 8}.results(t0.Add(time.Hour)),
		// p50: 1.6 > 1.1 + 0.3, missed; huma 1.15×, met; memory
		medianRun{p50: 1.6, p50Base: 1.1, huma: 1150, memKiB: 10}.results(t0.Add(2 * time.Hour)),
	}
	res, err := medianResults(runs)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Started.Equal(t0) || !res.Finished.Equal(t0.Add(3*time.Hour)) || len(res.Runs) != 3 || res.Memory.Kchat.PerConnKiB != 10 {
		t.Fatalf("report: started %s, finished %s, %d runs, scenarios from the last run: %v", res.Started, res.Finished, len(res.Runs), res.Memory)
	}

	// Two of three runs met the p50 goal, but on the medians (1.5 vs
	// 1.1) it is missed.
	_, p50 := rowByMeasure(t, res.Rows, "produce", "p50 latency at 50% of max")
	if p50.Kchat != 1.5 || p50.Baseline != 1.1 || p50.Met == nil || *p50.Met {
		t.Errorf("p50: %v vs %v met=%s, want 1.5 vs 1.1, missed", p50.Kchat, p50.Baseline, deref(p50.Met))
	}
	if len(p50.PerRun) != 3 || p50.PerRun[2].Run != 3 || p50.PerRun[2].Kchat != 1.6 || *p50.PerRun[0].Met != true || !strings.HasPrefix(p50.Note, "run 2: ") {
		t.Errorf("p50 per run %+v, note %q", p50.PerRun, p50.Note)
	}
	hi, huma := rowByMeasure(t, res.Rows, "huma overhead", "POST /messages handler in process")
	if huma.Kchat != 1150 || huma.Ratio != 1.15 || huma.Met == nil || !*huma.Met {
		t.Errorf("huma: %v (%v×) met=%s, want the median 1150, 1.15×, met", huma.Kchat, huma.Ratio, deref(huma.Met))
	}

	// One duplicate in one run: the count is that run's, and the p50
	// goal "with exactly-once kept" is missed although its medians meet.
	_, once := rowByMeasure(t, res.Rows, "chat round trip", "duplicates + gaps, every chat run")
	if once.Kchat != 1 || once.Met == nil || *once.Met || !strings.Contains(once.Note, "run 2: kchat 1 duplicates") {
		t.Errorf("exactly-once: %v met=%s (%s), want 1, missed, run 2's note", once.Kchat, deref(once.Met), once.Note)
	}
	_, chat := rowByMeasure(t, res.Rows, "chat round trip", "p50, 1000 sessions × 1 query/s")
	if chat.Kchat != 30 || chat.Baseline != 25 || chat.Met == nil || *chat.Met {
		t.Errorf("chat p50: %v vs %v met=%s, want missed for the duplicate of run 2", chat.Kchat, chat.Baseline, deref(chat.Met))
	}

	// Memory in runs 2 and 3 only: the mean of the two, in its place.
	mi, mem := rowByMeasure(t, res.Rows, "memory", "RSS per idle WebSocket, 10 connections")
	if mem.Kchat != 9 || mem.Baseline != 18 || mem.Ratio != 0.5 || mem.Met == nil || !*mem.Met || len(mem.PerRun) != 2 || mem.PerRun[0].Run != 2 ||
		!strings.HasPrefix(mem.Note, "only in 2 of 3 runs") {
		t.Errorf("memory: %+v", mem)
	}
	if mi > hi {
		t.Errorf("the memory row (%d) comes after the huma row (%d), not where its runs list it", mi, hi)
	}
	if n := len(rows(runs[1])); len(res.Rows) != n {
		t.Errorf("%d rows, want %d: one per figure", len(res.Rows), n)
	}

	res.Runs[0].File = "bench-runs/run-1.json"
	md := markdown(res)
	for _, want := range []string{"**Median of 3 runs**", "[bench-runs/run-1.json](bench-runs/run-1.json)", "## Runs",
		"| produce | p50 latency at 50% of max | 1.20 / 1.00 met | 1.50 / 1.30 met | 1.60 / 1.10 **missed** | 27% |",
		"| memory | RSS per idle WebSocket, 10 connections | — | 8.00 / 16.0 met | 10.0 / 20.0 met | 22% |"} {
		if !strings.Contains(md, want) {
			t.Errorf("benchmarks.md lacks %q", want)
		}
	}

	if _, err := medianResults([]*Results{{Short: true}, {}}); err == nil {
		t.Error("short and full runs mixed")
	}
	if _, err := medianResults(nil); err == nil {
		t.Error("a report of no run")
	}
}

// TestMedianRowWithoutTest: a goal its two figures do not decide alone
// (no test) is met only if every run met it; a row without a goal stays
// without one.
func TestMedianRowWithoutTest(t *testing.T) {
	row := func(k float64, ok *bool) Row { return Row{Scenario: "s", Measure: "m", Kchat: k, Goal: "g", Met: ok} }
	got := medianRows([][]Row{{row(1, met(true))}, {row(2, met(false))}, {row(3, met(true))}, {row(4, nil)}})
	if len(got) != 1 || got[0].Kchat != 2.5 || got[0].Met == nil || *got[0].Met {
		t.Errorf("got %+v, want the mean of the middle two and missed", got)
	}
	if got := medianRows([][]Row{{row(1, nil)}, {row(2, nil)}}); got[0].Met != nil || got[0].Kchat != 1.5 {
		t.Errorf("got %+v, want no verdict", got[0])
	}
}

// TestWriteMedianWritesTheReport: from the runs' benchmarks.json, the
// report and a copy of each run beside it, replacing an earlier report's
// run files; a single run's report removes them.
func TestWriteMedianWritesTheReport(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	var files []string
	for i, huma := range []float64{1300, 1100, 1150} {
		r := medianRun{p50: 1, p50Base: 1, huma: huma}.results(t0.Add(time.Duration(i) * time.Hour))
		r.Rows = rows(r)
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "run", string(rune('a'+i)), "benchmarks.json")
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	stale := filepath.Join(out, "bench-runs", "run-4.json")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeMedian(out, files); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "benchmarks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got Results
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	_, huma := rowByMeasure(t, got.Rows, "huma overhead", "POST /messages handler in process")
	if len(got.Runs) != 3 || got.Runs[1].File != "bench-runs/run-2.json" || huma.Kchat != 1150 || len(huma.PerRun) != 3 {
		t.Errorf("report: runs %+v, huma %+v", got.Runs, huma)
	}
	copies, _ := filepath.Glob(filepath.Join(out, "bench-runs", "*.json"))
	if want := []string{"run-1.json", "run-2.json", "run-3.json"}; len(copies) != 3 || !slices.Equal(baseNames(copies), want) {
		t.Errorf("run files %v, want %v", baseNames(copies), want)
	}
	if md, err := os.ReadFile(filepath.Join(out, "benchmarks.md")); err != nil || !strings.Contains(string(md), "**Median of 3 runs**") {
		t.Errorf("benchmarks.md: %v", err)
	}
	// A report is not a run.
	if err := writeMedian(t.TempDir(), []string{filepath.Join(out, "benchmarks.json")}); err == nil {
		t.Error("a report of several runs taken for a run")
	}
	if err := writeRunFiles(out, nil); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(out, "bench-runs", "*.json")); len(left) != 0 {
		t.Errorf("a single run's report left %v", left)
	}
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// TestRunsSettingIsChecked: KCHAT_BENCH_RUNS is refused below 1 and with
// KCHAT_BENCH_ONLY (a median of partial runs would replace the report's
// other scenarios), before anything runs.
func TestRunsSettingIsChecked(t *testing.T) {
	t.Setenv("KCHAT_TEST_KAFKA_BROKERS", "127.0.0.1:1")
	t.Setenv("KCHAT_TEST_REDIS_URL", "redis://127.0.0.1:1")
	for _, tt := range []struct{ runs, only, want string }{
		{"0", "", "KCHAT_BENCH_RUNS: 0 runs"},
		{"3", "chat", "unset KCHAT_BENCH_ONLY"},
	} {
		t.Setenv("KCHAT_BENCH_RUNS", tt.runs)
		t.Setenv("KCHAT_BENCH_ONLY", tt.only)
		if err := run(t.Context()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("KCHAT_BENCH_RUNS=%s KCHAT_BENCH_ONLY=%s: %v, want %q", tt.runs, tt.only, err, tt.want)
		}
	}
}

package main

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStatCPUAddsUserAndSystemTicks(t *testing.T) {
	for _, tt := range []struct {
		give string
		want time.Duration
	}{
		// utime 250 and stime 50 ticks of 10 ms.
		{"4242 (gateway) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 12 0 100 0 0", 3 * time.Second},
		// A command name with spaces and parentheses does not shift the fields.
		{"7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 100 * time.Millisecond},
		{"", 0},
		{"12 (short) S 1", 0},
	} {
		if got := statCPU(tt.give); got != tt.want {
			t.Errorf("statCPU(%q) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

// TestCPUSamplePerOpSplitsByProcess: the CPU per operation is split into
// the load generator's and each service's, the gateways of a run added up.
func TestCPUSamplePerOpSplitsByProcess(t *testing.T) {
	before := cpuSample{loadGenerator: time.Second, "gateway": 2 * time.Second, "answerer": time.Second}
	after := cpuSample{loadGenerator: 1500 * time.Millisecond, "gateway": 3 * time.Second, "answerer": 1200 * time.Millisecond}
	got := after.perOp(before, 1000)
	want := map[string]float64{loadGenerator: 500, "gateway": 1000, "answerer": 200}
	for name, w := range want {
		if math.Abs(got[name]-w) > 1e-9 {
			t.Errorf("%s: %v µs per op, want %v", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if s := after.services() - before.services(); s != 1200*time.Millisecond {
		t.Errorf("services used %s, want 1.2s", s)
	}
	// A process that exited reads 0: it is charged nothing, not less.
	gone := cpuSample{loadGenerator: 1500 * time.Millisecond, "gateway": 0, "answerer": 1200 * time.Millisecond}
	if v := gone.perOp(before, 1000)["gateway"]; v != 0 {
		t.Errorf("exited gateway: %v µs per op, want 0", v)
	}
	if after.perOp(before, 0) != nil {
		t.Error("a split without operations")
	}
	if (cpuSample{loadGenerator: time.Second}).perOp(cpuSample{}, 10) != nil {
		t.Error("a split for a baseline, which runs in kbench alone")
	}
}

func TestCPUSamplePerSecond(t *testing.T) {
	before := cpuSample{loadGenerator: time.Second, "gateway": 2 * time.Second}
	after := cpuSample{loadGenerator: time.Second, "gateway": 2*time.Second + 400*time.Millisecond}
	got := after.perSecond(before, 10*time.Second)
	if got["gateway"] != 40000 || got[loadGenerator] != 0 {
		t.Errorf("got %v, want gateway 40000 µs/s and the load generator 0", got)
	}
	if after.perSecond(before, 0) != nil {
		t.Error("a rate over no time")
	}
}

// TestCPUMeterAddsProcessesOfOneName: two processes metered as "gateway"
// are summed under that name, apart from the load generator.
func TestCPUMeterAddsProcessesOfOneName(t *testing.T) {
	deadline := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(deadline) { // some CPU time of our own
	}
	m := &cpuMeter{}
	self := os.Getpid()
	m.add("gateway", self)
	m.add("gateway", self)
	s := m.sample()
	if len(s) != 2 || s[loadGenerator] <= 0 {
		t.Fatalf("sample %v, want the load generator and the gateways", s)
	}
	one := procCPU(self)
	if g := s["gateway"]; g < 2*one-20*time.Millisecond || g > 2*one {
		t.Errorf("gateways %s, want twice this process's %s", g, one)
	}
}

func splitResults() *Results {
	by := func(svc string, us, lg float64) map[string]float64 {
		return map[string]float64{svc: us, loadGenerator: lg}
	}
	scaleBy := func(gw, ans float64) map[string]float64 {
		return map[string]float64{"gateway": gw, "answerer": ans, loadGenerator: 300}
	}
	return &Results{
		Produce: &ProduceResult{
			Kchat: map[string]Throughput{
				"1":  {PerSecond: 2000, CPUByProcess: by("producer", 200, 150)},
				"64": {PerSecond: 20000, CPUByProcess: by("producer", 50, 20)},
			},
			Baseline: map[string]Throughput{"1": {PerSecond: 3000}, "64": {PerSecond: 50000}},
		},
		Fetch: &FetchResult{
			Kchat:    map[string]FetchRun{"1": {Throughput{PerSecond: 8000, CPUByProcess: by("consumer", 80, 50)}}, "32": {Throughput{PerSecond: 15000, CPUByProcess: by("consumer", 40, 30)}}},
			Baseline: FetchRun{Throughput{PerSecond: 3000}},
			Checks:   map[string]FetchCheck{},
		},
		Chat: &ChatResult{Sessions: 1000, Rate: 1000, Kchat: ChatRun{Due: 30000, Answered: 30000, CPUByProcess: scaleBy(400, 500)}},
		Scale: &ScaleResult{Rate: 200, MeasuredSeconds: 20, Gateways: []int{1, 4}, Runs: []ScaleRun{
			{Order: 1, Routing: scaleKchat, Gateways: 1, Due: 4000, Answered: 4000, CPUByProcess: scaleBy(1250, 2000),
				IdleCPU: map[string]float64{"gateway": 40000, "answerer": 100000, loadGenerator: 0}, IdleSeconds: 10},
			{Order: 2, Routing: scaleBroadcast, Gateways: 1, Due: 4000, Answered: 4000, CPUByProcess: scaleBy(1260, 2000)},
			{Order: 3, Routing: scaleBroadcast, Gateways: 4, Due: 4000, Answered: 4000, CPUByProcess: scaleBy(2000, 2000)},
			{Order: 4, Routing: scaleKchat, Gateways: 4, Due: 4000, Answered: 4000, CPUByProcess: scaleBy(1400, 2000)},
		}},
		Memory: &MemoryResult{Connections: 10000, Kchat: MemoryRun{PerConnKiB: 8, IdleSeconds: 30, IdleCPUBefore: 2000, IdleCPUAfter: 12000, IdleCPUPerConn: 1}},
	}
}

// TestServiceCPURowsGiveEachServicePerCore: one row per service with its
// CPU per operation and the per-core rate it implies (1e6 ÷ µs), and the
// section of benchmarks.md lists every metered run by process.
func TestServiceCPURowsGiveEachServicePerCore(t *testing.T) {
	r := splitResults()
	want := []struct {
		measure string
		us      float64
		perCore string
	}{
		{"producer service per message, POST /messages, 64 clients (produce)", 50, "≈ 20000 messages/s per core"},
		{"consumer service per fetched message, GET /messages limit 1, 32 clients (fetch)", 40, "≈ 25000 messages/s per core"},
		{"gateway per answered question, 1000 questions/s, 1 gateway (chat)", 400, "≈ 2500 questions/s per core"},
		{"answerer per answered question, 1000 questions/s, 1 gateway (chat)", 500, "≈ 2000 questions/s per core"},
		{"gateway per answered question, 200 questions/s, 1 gateway(s), routing (scale)", 1250, "≈ 800 questions/s per core"},
		{"answerer per answered question, 200 questions/s, 1 gateway(s), routing (scale)", 2000, "≈ 500 questions/s per core"},
		{"gateway per idle WebSocket, 10000 connections (memory)", 1, "≈ 1000000 idle sockets per core"},
	}
	got := serviceCPURows(r)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Measure != w.measure || g.Kchat != w.us || !strings.Contains(g.Note, w.perCore) || g.Met != nil {
			t.Errorf("row %d: %q %v µs (%s), want %q %v µs (%s), no goal", i, g.Measure, g.Kchat, g.Note, w.measure, w.us, w.perCore)
		}
	}
	// Idle 40,000 µs/s over 20 s is 200 µs of each of the 4,000 questions:
	// 1050 above it, and a core does (1e6 − 40,000) ÷ 1050 ≈ 914 a second.
	if want := "idle 40000 µs/s, above idle 1050 µs per question: ≈ 914 questions/s per core"; !strings.Contains(got[4].Note, want) {
		t.Errorf("the scale row does not split off the idle cost: %s (want %q)", got[4].Note, want)
	}
	if !strings.Contains(got[4].Note, "at 4 gateways (routing): gateways 1400, answerer 2000 µs") {
		t.Errorf("the scale row does not give the other gateway counts: %s", got[4].Note)
	}
	r.Chat.Kchat.Answered = 7000
	if g := serviceCPURows(r)[2]; !strings.Contains(g.Note, "answered 7000/30000 due; **fell behind**") {
		t.Errorf("a chat run that fell behind is not flagged: %s", g.Note)
	}
	r.Rows = rows(r)
	md := markdown(r)
	for _, line := range []string{
		"| produce | POST /messages, 64 client(s), closed loop | message | 20000 | producer | 50.0 | 20000 | — | — |",
		"| produce | POST /messages, 64 client(s), closed loop | message | 20000 | kbench | 20.0 | 50000 | — | — |",
		"| fetch | GET /messages limit 1, 32 client(s), closed loop | fetched message | 15000 | consumer | 40.0 | 25000 | — | — |",
		"| scale | #1, 200 questions/s over 1 gateway(s), routing | answered question | 200 | answerer | 2000 | 500 | 100000 | 1500 |",
		"| chat | 1000 sessions × 1 question/s, 1 gateway (**fell behind**: 7000 of 30000 answered) | answered question | 233 | answerer | 500.0 | 2000 | — | — |",
		"| scale | #3, 200 questions/s over 4 gateway(s), broadcast | answered question | 200 | gateway | 2000 | 500 | — | — |",
		"1.00 µs a second per connection",
	} {
		if !strings.Contains(md, line) {
			t.Errorf("benchmarks.md lacks %q", line)
		}
	}
}

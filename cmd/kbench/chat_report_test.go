package main

import (
	"strings"
	"testing"
)

// TestChatRowsJudgeIssue20Goals: the round trip against the plain chain
// (p50 + 10 ms with exactly-once kept, p99 + 40 ms), CPU per question
// against the transactional chain (≤ 1.5×), and no duplicate or gap in
// kchat's run or the transactional chain's; each goal can be missed on
// its own.
func TestChatRowsJudgeIssue20Goals(t *testing.T) {
	good := func() *ChatResult {
		return &ChatResult{Sessions: 1000, Rate: 1000,
			Kchat: ChatRun{Answered: 900, Latency: Percentiles{Count: 900, P50: 34, P99: 110}, CPUPerOp: 150, ServicesCPUPerOp: 90, Hops: Hops{Matched: 900}},
			Chain: ChatRun{Latency: Percentiles{P50: 32, P99: 73}, CPUPerOp: 100, Hops: Hops{Matched: 900}},
			Plain: ChatRun{Latency: Percentiles{P50: 25, P99: 71}, CPUPerOp: 60, Hops: Hops{Matched: 900, Duplicates: 3}},
		}
	}
	type verdicts struct{ p50, p99, cpu, once bool }
	for _, tt := range []struct {
		name   string
		change func(c *ChatResult)
		want   verdicts
	}{
		{"every goal met; the plain chain's duplicates are not counted", func(*ChatResult) {}, verdicts{true, true, true, true}},
		{"p50 more than 10 ms above the plain chain", func(c *ChatResult) { c.Kchat.Latency.P50 = 35.5 }, verdicts{false, true, true, true}},
		{"a duplicate answer", func(c *ChatResult) { c.Kchat.Hops.Duplicates = 1 }, verdicts{false, true, true, false}},
		{"a skipped question", func(c *ChatResult) { c.Kchat.Hops.Gaps = 1 }, verdicts{false, true, true, false}},
		{"a gap in the transactional chain", func(c *ChatResult) { c.Chain.Hops.Gaps = 2 }, verdicts{true, true, true, false}},
		{"kchat's topics not read", func(c *ChatResult) { c.Kchat.Hops = Hops{} }, verdicts{false, true, true, false}},
		{"the plain chain not measured", func(c *ChatResult) { c.Plain.Latency = Percentiles{} }, verdicts{false, false, true, true}},
		{"p99 more than 40 ms above the plain chain", func(c *ChatResult) { c.Kchat.Latency.P99 = 111.5 }, verdicts{true, false, true, true}},
		{"CPU above 1.5× the transactional chain", func(c *ChatResult) { c.Kchat.CPUPerOp = 151 }, verdicts{true, true, false, true}},
	} {
		c := good()
		tt.change(c)
		got := chatRows(c)
		if len(got) != 4 {
			t.Fatalf("%s: %d rows", tt.name, len(got))
		}
		for i, w := range []bool{tt.want.p50, tt.want.p99, tt.want.cpu, tt.want.once} {
			if got[i].Met == nil || *got[i].Met != w {
				t.Errorf("%s: %q (%s) met=%s, want %v", tt.name, got[i].Measure, got[i].Goal, deref(got[i].Met), w)
			}
		}
	}
	got := chatRows(good())
	p50, p99, cpu, once := got[0], got[1], got[2], got[3]
	if p50.Baseline != 25 || p50.Goal != "≤ plain chain + 10 ms, with exactly-once kept" || !strings.Contains(p50.Note, "transactional chain p50 32.0 ms") {
		t.Errorf("p50 row: %+v", p50)
	}
	if p99.Baseline != 71 || p99.Goal != "≤ plain chain p99 + 40 ms" || !strings.Contains(p99.Note, "transactional chain p99 73.0 ms") {
		t.Errorf("p99 row: %+v", p99)
	}
	if cpu.Kchat != 150 || cpu.Baseline != 100 || cpu.Ratio != 1.5 || cpu.Goal != "≤ 1.5×" || !strings.Contains(cpu.Note, "plain chain 60.0 µs") {
		t.Errorf("CPU row: %+v", cpu)
	}
	if once.Kchat != 0 || once.Goal != "0" || !strings.Contains(once.Note, "plain chain (at-least-once, not counted) 3 duplicates") {
		t.Errorf("exactly-once row: %+v", once)
	}
	c := good()
	c.Kchat.Hops.Duplicates, c.Chain.Hops.Gaps = 2, 1
	if once := chatRows(c)[3]; once.Kchat != 3 || !strings.Contains(once.Note, "kchat 2 duplicates, 0 gaps (900 questions matched") {
		t.Errorf("exactly-once row counts %v: %s", once.Kchat, once.Note)
	}
	if chatRows(nil) != nil {
		t.Error("rows without a chat scenario")
	}
}

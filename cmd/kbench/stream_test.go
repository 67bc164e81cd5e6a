package main

import (
	"strings"
	"testing"
)

// TestStreamRowsJudgeTheGapToTheModel: the goal row is the per-question
// gap between the model's first token and the first delta, judged against
// 30 ms; the first delta is compared with the final answer; benchmarks.md
// shows every row and interval.
func TestStreamRowsJudgeTheGapToTheModel(t *testing.T) {
	for _, tt := range []struct {
		give    float64
		wantMet bool
	}{{give: 12, wantMet: true}, {give: 30, wantMet: true}, {give: 31, wantMet: false}} {
		s := &StreamResult{Sessions: 100, Rate: 100, Tokens: 50, TokenMs: 20,
			Gap:        Spread{Count: 10, P50: tt.give, P90: 40, P99: 60},
			FirstDelta: Spread{Count: 10, P50: 250, P99: 400}, Final: Spread{Count: 10, P50: 1250, P99: 1500},
			ModelFirst: Spread{Count: 10, P50: 238}, AfterLast: Spread{Count: 10, P50: 70}}
		got := streamRows(s)
		if len(got) != 3 {
			t.Fatalf("%d rows, want 3: %+v", len(got), got)
		}
		goal := got[0]
		if goal.Kchat != tt.give || goal.Met == nil || *goal.Met != tt.wantMet || goal.Goal != "≤ 30 ms" ||
			!strings.Contains(goal.Measure, "100 sessions × 1 question/s, model 50 tokens × 20 ms") {
			t.Errorf("gap %v ms: goal row %+v, want met=%v", tt.give, goal, tt.wantMet)
		}
		if first := got[1]; first.Kchat != 250 || first.Baseline != 1250 || first.Ratio != 0.2 || first.Met != nil ||
			!strings.Contains(first.Note, "model's first token p50 238.0 ms") {
			t.Errorf("first delta row %+v", first)
		}
		md := markdown(&Results{Stream: s, Rows: got})
		for _, r := range got {
			if !strings.Contains(md, "| "+r.Measure+" |") {
				t.Errorf("benchmarks.md lacks the row %q", r.Measure)
			}
		}
		if !strings.Contains(md, "| sent → first `answer_delta` | 250.0 | 0 | 400.0 |") ||
			!strings.Contains(md, "| model's first token → first delta (per question) | "+fmtNum(tt.give)+" | 40.0 | 60.0 |") {
			t.Errorf("benchmarks.md lacks the stream intervals:\n%s", md)
		}
	}
	if rows := streamRows(&StreamResult{}); *rows[0].Met {
		t.Error("a run with no measured question meets the goal")
	}
}

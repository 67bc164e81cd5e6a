package main

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
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

// TestFakeModelStreamsAndNotesTheQuestion: the fake model streams its
// tokens the set delay apart as chat-completion chunks and notes the first
// and last token's times under the reference of the last question in the
// request (the one asked, after the history).
func TestFakeModelStreamsAndNotesTheQuestion(t *testing.T) {
	m := startFakeModel(5, 20*time.Millisecond)
	defer m.close()
	body := `{"messages":[{"role":"user","content":"old (kbref7)"},{"role":"user","content":"new (kbref42)"}],"stream":true}`
	start := time.Now()
	resp, err := http.Post(m.baseURL()+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var chunks int
	var done bool
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "data: [DONE]":
			done = true
		case strings.HasPrefix(line, "data: "):
			chunks++
			if !strings.Contains(line, `"chat.completion.chunk"`) {
				t.Errorf("not a chunk: %s", line)
			}
		}
	}
	if chunks != 5 || !done {
		t.Fatalf("%d chunks, [DONE] %v; want 5 and true", chunks, done)
	}
	got, ok := m.times(42)
	if !ok {
		t.Fatal("no times for the question asked (kbref42)")
	}
	if _, old := m.times(7); old {
		t.Error("times noted for a question of the history (kbref7)")
	}
	if first := got.first.Sub(start); first < 20*time.Millisecond {
		t.Errorf("first token %s after the request, want ≥ 20ms", first)
	}
	if span := got.last.Sub(got.first); span < 4*20*time.Millisecond {
		t.Errorf("first to last token %s, want ≥ 4 × 20ms", span)
	}
}

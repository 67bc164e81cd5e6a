package main

import (
	"fmt"
	"strings"
)

// streamGoalMs is issue 17's goal: the first answer_delta at most 30 ms
// after the model's first token, at the median.
const streamGoalMs = 30

// Spread is a histogram's median, tail and maximum, in milliseconds.
type Spread struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (l *latencies) spread() Spread {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Spread{
		Count: l.h.TotalCount(),
		P50:   ms(l.h.ValueAtQuantile(50)), P90: ms(l.h.ValueAtQuantile(90)),
		P99: ms(l.h.ValueAtQuantile(99)), Max: ms(l.h.Max()),
	}
}

// streamRows are the summary's rows of the stream scenario: the goal (the
// first delta after the model's first token), then the time to the first
// delta against the time to the final answer, which is what a client that
// ignores deltas waits.
func streamRows(s *StreamResult) []Row {
	if s == nil {
		return nil
	}
	load := fmt.Sprintf("%d sessions × 1 question/s, model %d tokens × %.0f ms", s.Sessions, s.Tokens, s.TokenMs)
	return []Row{
		Row{Scenario: "stream", Measure: "first answer_delta − model's first token, p50, " + load, Kchat: s.Gap.P50, Unit: "ms", unmet: s.Gap.Count == 0,
			Note: fmt.Sprintf("p90 %s, p99 %s ms; %d questions; %d answers without a delta, %d failed, %d unanswered",
				fmtNum(s.Gap.P90), fmtNum(s.Gap.P99), s.Gap.Count, s.NoDelta, s.Failed, s.Unanswered)}.judged(fmt.Sprintf("≤ %d ms", streamGoalMs), upTo(streamGoalMs)),
		{Scenario: "stream", Measure: "time to first answer_delta p50 vs time to final answer p50", Kchat: s.FirstDelta.P50, Baseline: s.Final.P50,
			Unit: "ms", Ratio: ratio(s.FirstDelta.P50, s.Final.P50),
			Note: fmt.Sprintf("the final answer is what a client that ignores deltas waits; model's first token p50 %s ms; p99 %s vs %s ms",
				fmtNum(s.ModelFirst.P50), fmtNum(s.FirstDelta.P99), fmtNum(s.Final.P99))},
		{Scenario: "stream", Measure: "final answer − model's last token, p50", Kchat: s.AfterLast.P50, Unit: "ms",
			Note: fmt.Sprintf("p90 %s, p99 %s ms", fmtNum(s.AfterLast.P90), fmtNum(s.AfterLast.P99))},
	}
}

// streamMarkdown is the stream scenario's section of benchmarks.md.
func streamMarkdown(b *strings.Builder, s *StreamResult) {
	fmt.Fprintf(b, "\n## stream\n\nStreamed answers (issue 17): the gateway and the answerer with `KCHAT_GENERATOR=openai` against a fake OpenAI-compatible model in kbench that streams every answer as %d tokens %.0f ms apart and notes when it flushed each answer's first and last token. %d WebSocket sessions each ask a question a second (%.0f questions/s, phases spread over the second; `KCHAT_ANSWERER_CONCURRENCY=%d`, since each generation takes a second). Times run from when a question was due: to its first `answer_delta` frame, to its `answer` frame, and to the model's first and last token; \"first delta − model's first token\" is per question, what streaming adds to the model (the answerer's coalescing and delta write, the stream topic, the gateway, the socket). kchat cannot turn streaming off, and a client that ignores `answer_delta` waits for the final answer: \"time to final answer\" is today's round trip with this model. A session's answers come in order, one generation after the other, each a second of the model's, and a generate batch commits its answers together, after its slowest generation: at a question a second per session the questions queue, so the times from the send include a queue that grows with the run's length; the per-question differences to the model's tokens do not. Sent %d, answered in the window %d (%d failed, %d without a delta, %d not matched to the model's times), unanswered a minute after the last question %d, errors %d, %.1f deltas per answer, CPU %s µs per question (load generator and model included).\n\n",
		s.Tokens, s.TokenMs, s.Sessions, s.Rate, s.Concurrency, s.Sent, s.Answered, s.Failed, s.NoDelta, s.Unmatched, s.Unanswered, s.Errors, s.DeltasPerAnswer, fmtNum(s.CPUPerOp))
	b.WriteString("| interval | p50 ms | p90 ms | p99 ms | max ms | samples |\n|---|---:|---:|---:|---:|---:|\n")
	for _, l := range []struct {
		name string
		sp   Spread
	}{
		{"sent → model's first token", s.ModelFirst}, {"sent → first `answer_delta`", s.FirstDelta},
		{"sent → model's last token", s.ModelLast}, {"sent → final `answer` (today's round trip)", s.Final},
		{"model's first token → first delta (per question)", s.Gap}, {"model's last token → final answer (per question)", s.AfterLast},
	} {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %d |\n", l.name, fmtNum(l.sp.P50), fmtNum(l.sp.P90), fmtNum(l.sp.P99), fmtNum(l.sp.Max), l.sp.Count)
	}
}

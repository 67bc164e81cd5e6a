package main

import (
	"fmt"
	"strings"
)

// readsNote lists the answer records each gateway of r read.
func readsNote(r *ScaleRun) string {
	parts := make([]string, len(r.Read))
	for i, v := range r.Read {
		parts[i] = fmt.Sprintf("%.0f", v)
	}
	return strings.Join(parts, ", ")
}

// scaleBehind is the rows' warning about runs that did not answer every
// question due in their window: their CPU per question is overstated.
func scaleBehind(runs ...*ScaleRun) string {
	n := 0
	for _, r := range runs {
		if r.Answered < r.Due {
			n++
		}
	}
	if n > 0 {
		return fmt.Sprintf("; **%d run(s) fell behind** (answered fewer than were due): their CPU per question is overstated", n)
	}
	return ""
}

// scaleRows are the summary's rows of the scale scenario: for each gateway
// count, the answer records a gateway read and the CPU per question, with
// routing (kchat) against broadcast reading; then issue 19's goals, judged
// on routing: each gateway reads about answers ÷ N, and the CPU per
// question at the most gateways is at most 1.1× that at one. Nothing is
// asserted: a missed goal is reported.
func scaleRows(s *ScaleResult) []Row {
	if s == nil {
		return nil
	}
	var out []Row
	for _, n := range s.Gateways {
		k, bc := s.run(scaleKchat, n), s.run(scaleBroadcast, n)
		if k == nil || bc == nil {
			continue
		}
		out = append(out, Row{Scenario: "scale", Measure: fmt.Sprintf("answer records read per gateway, %d gateway(s), %.0f questions/s in all", n, s.Rate),
			Kchat: k.readMean(), Baseline: bc.readMean(), Unit: "records", Ratio: ratio(k.readMean(), bc.readMean()),
			Goal: fmt.Sprintf("≈ answers ÷ N (max ≤ %.1f×)", scaleReadGoal), Met: met(k.Answered > 0 && k.readMax() <= scaleReadGoal),
			Note: fmt.Sprintf("answers in window %d ÷ %d = %.0f; routing read %s (max %.2f× the share), broadcast %s", k.Answered, n, k.share(), readsNote(k), k.readMax(), readsNote(bc))},
			Row{Scenario: "scale", Measure: fmt.Sprintf("CPU per question, %d gateway(s) + answerer", n),
				Kchat: k.ServicesCPU, Baseline: bc.ServicesCPU, Unit: "µs", Ratio: ratio(k.ServicesCPU, bc.ServicesCPU),
				Note: fmt.Sprintf("with the load generator %s vs %s µs; p50 %s vs %s ms; answered %d/%d vs %d/%d due",
					fmtNum(k.CPUPerOp), fmtNum(bc.CPUPerOp), fmtNum(k.Latency.P50), fmtNum(bc.Latency.P50), k.Answered, k.Due, bc.Answered, bc.Due) + scaleBehind(k, bc)})
	}
	if len(s.Gateways) < 2 {
		return out
	}
	lo, hi := s.Gateways[0], s.Gateways[len(s.Gateways)-1]
	k1, kn := s.run(scaleKchat, lo), s.run(scaleKchat, hi)
	if k1 == nil || kn == nil {
		return out
	}
	rt := ratio(kn.ServicesCPU, k1.ServicesCPU)
	note := fmt.Sprintf("routing: %s µs at %d, %s µs at %d", fmtNum(k1.ServicesCPU), lo, fmtNum(kn.ServicesCPU), hi)
	if b1, bn := s.run(scaleBroadcast, lo), s.run(scaleBroadcast, hi); b1 != nil && bn != nil {
		note += fmt.Sprintf("; broadcast: %s µs at %d, %s µs at %d (%.2f×)", fmtNum(b1.ServicesCPU), lo, fmtNum(bn.ServicesCPU), hi, ratio(bn.ServicesCPU, b1.ServicesCPU))
	}
	return append(out, Row{Scenario: "scale", Measure: fmt.Sprintf("CPU per question (gateways + answerer), %d gateways ÷ %d (routing)", hi, lo),
		Kchat: kn.ServicesCPU, Baseline: k1.ServicesCPU, Unit: "µs", Ratio: rt,
		Note: note + scaleBehind(k1, kn)}.judged(fmt.Sprintf("≤ %.1f×", scaleCPUGoal), atMost(scaleCPUGoal)))
}

// scaleMarkdown is the scale scenario's section of benchmarks.md.
func scaleMarkdown(b *strings.Builder, s *ScaleResult) {
	fmt.Fprintf(b, "\n## scale\n\nThe chat load at %.0f questions/s in all (%d WebSocket sessions × 1 question/s, session *i* on gateway *i* mod N) through N gateway processes (N = %s) in front of one answerer (extractive generator); the gateways publish their queries to Kafka. Each N runs twice: **routing** (`KCHAT_ANSWER_ROUTING=partition`, kchat: each gateway owns partitions of the answer topic through the gateway group and reads only those) and **broadcast** (every gateway reads every answer, kchat before issue 19: the baseline). The answer topic has %d partitions (`KCHAT_ANSWER_PARTITIONS`), `KCHAT_ROUTING_GRACE=%.0fs`; with routing the run waits until every gateway owns some partitions and they own all %d, and the measured window starts no sooner than %.0f s later (a gateway reads every partition during the grace after an assignment). %.0f s warm-up, %.0f s measured. \"Read\" is the rise of each gateway's `kchat_gateway_answers_read_total` over the window and the drain after it; \"answers\" are the questions due in the window that were answered. CPU is the user+system time of all the gateways and the answerer per answered question (\"with load generator\" adds kbench's own; the broker and Redis are never counted).\n\n",
		s.Rate, s.Sessions, joinInts(s.Gateways), s.Partitions, s.GraceSeconds, s.Partitions, scaleSettle.Seconds(), s.WarmupSeconds, s.MeasuredSeconds)
	b.WriteString("| # | N | reading | partitions owned | answered / due | read per gateway | max read ÷ (answers ÷ N) | CPU µs/question | with load generator | p50 ms | p99 ms | errors |\n|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for i := range s.Runs {
		r := &s.Runs[i]
		owned := "—"
		if r.Routing == scaleKchat {
			owned = floats(r.Owned)
			if floats(r.OwnedAfter) != owned {
				owned += " → " + floats(r.OwnedAfter)
			}
		}
		name := "routing"
		if r.Routing == scaleBroadcast {
			name = "broadcast"
		}
		fmt.Fprintf(b, "| %d | %d | %s | %s | %d / %d | %s | %.2f | %s | %s | %s | %s | %d |\n", r.Order, r.Gateways, name, owned, r.Answered, r.Due,
			readsNote(r), r.readMax(), fmtNum(r.ServicesCPU), fmtNum(r.CPUPerOp), fmtNum(r.Latency.P50), fmtNum(r.Latency.P99), r.Errors)
	}
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ", ")
}

func floats(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}

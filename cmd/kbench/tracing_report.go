package main

import (
	"fmt"
	"strings"
)

// variant returns the named variant's figures (nil when it did not run).
func (t *TracingResult) variant(name string) *TracingVariant {
	for i := range t.Variants {
		if t.Variants[i].Name == name {
			return &t.Variants[i]
		}
	}
	return nil
}

// runsCPU lists a variant's services CPU per question, run by run, in
// run order.
func runsCPU(v *TracingVariant) string {
	parts := make([]string, len(v.Runs))
	for i, r := range v.Runs {
		parts[i] = fmtNum(r.ServicesCPU)
	}
	return strings.Join(parts, ", ")
}

// behind counts the runs of vs that did not answer every question due in
// their window (a saturated machine): their CPU per question is overstated.
func behind(vs ...*TracingVariant) int {
	n := 0
	for _, v := range vs {
		for _, r := range v.Runs {
			if r.Answered < r.Due {
				n++
			}
		}
	}
	return n
}

// behindNote is the rows' warning about such runs.
func behindNote(vs ...*TracingVariant) string {
	if n := behind(vs...); n > 0 {
		return fmt.Sprintf("; **%d run(s) fell behind** (answered fewer than were due): their CPU per question is overstated", n)
	}
	return ""
}

// tracingRows are the summary's rows of the tracing scenario: tracing off
// against the build without the tracing code (issue 18's goal), then
// tracing on against off. The figures are the medians of the runs' CPU per
// question of the gateway and the answerer: the load generator's share is
// the same work in every variant and would only dilute the ratio (the
// notes give the figures with it, as the other scenarios count CPU). Each
// note lists the runs, so the run-to-run noise is there to see.
func tracingRows(t *TracingResult) []Row {
	if t == nil {
		return nil
	}
	off, on, base := t.variant(tracingOff), t.variant(tracingOn), t.variant(tracingBaseline)
	if off == nil || on == nil {
		return nil
	}
	load := fmt.Sprintf("median of %d, %d questions/s", t.RunsPerVariant, t.Sessions)
	row := Row{Scenario: "tracing", Measure: "services' CPU per question, tracing off vs the build without tracing, " + load,
		Kchat: off.ServicesCPU, Unit: "µs", Goal: fmt.Sprintf("≤ %.2f×", tracingGoal)}
	if base != nil {
		row.Baseline, row.Ratio = base.ServicesCPU, ratio(off.ServicesCPU, base.ServicesCPU)
		row = row.judged(row.Goal, atMost(tracingGoal))
		row.Note = fmt.Sprintf("runs: off %s, baseline %s µs (spread %.0f%%, %.0f%%); with the load generator %s vs %s µs (%.2f×); p50 %s vs %s ms; baseline: %s, %d other changed files",
			runsCPU(off), runsCPU(base), off.spread(), base.spread(), fmtNum(off.CPUPerOp), fmtNum(base.CPUPerOp), ratio(off.CPUPerOp, base.CPUPerOp),
			fmtNum(off.P50), fmtNum(base.P50), base.Build, len(t.Base.OtherChanges)) + behindNote(off, base)
	} else {
		row.Note = "no baseline: " + t.Base.Skipped
	}
	return []Row{row, {Scenario: "tracing", Measure: "services' CPU per question, tracing on (OTLP, every question sampled) vs off, " + load,
		Kchat: on.ServicesCPU, Baseline: off.ServicesCPU, Unit: "µs", Ratio: ratio(on.ServicesCPU, off.ServicesCPU),
		Note: fmt.Sprintf("runs: on %s, off %s µs (spread %.0f%%, %.0f%%); with the load generator %s vs %s µs (%.2f×); p50 %s vs %s ms, p99 %s vs %s ms; %s spans per question exported",
			runsCPU(on), runsCPU(off), on.spread(), off.spread(), fmtNum(on.CPUPerOp), fmtNum(off.CPUPerOp), ratio(on.CPUPerOp, off.CPUPerOp),
			fmtNum(on.P50), fmtNum(off.P50), fmtNum(on.P99), fmtNum(off.P99), fmtNum(on.SpansPerQuestion)) + behindNote(on, off)}}
}

// tracingMarkdown is the tracing scenario's section of benchmarks.md.
func tracingMarkdown(b *strings.Builder, t *TracingResult) {
	fmt.Fprintf(b, "\n## tracing\n\nThe chat load (%d WebSocket sessions × 1 question/s to the chat scenario's gateway and answerer, %.0f s warm-up, %.0f s measured) on three variants, %d run(s) each, the order rotated every round (in three rounds, each variant runs first, second and last once): **off** is tracing as shipped (`KCHAT_TRACING=off`: a no-op provider, no Kafka hooks, no HTTP middleware); **on** is `KCHAT_TRACING=otlp` with every question sampled, the SDK's batching exporter sending OTLP/HTTP to %s; **baseline** is the gateway and answerer built from ",
		t.Sessions, t.WarmupSeconds, t.MeasuredSeconds, t.RunsPerVariant, t.Exporter)
	switch {
	case t.Base.Skipped != "":
		fmt.Fprintf(b, "the commit before tracing, which could not be built here: %s.", t.Base.Skipped)
	case t.Base.TracingCommit != "":
		fmt.Fprintf(b, "commit %s, the parent of %s, which added tracing: the same load without the tracing code paths (the stages' no-op spans, the hop histograms, the `kchat-asked-at` header are all in tracing off).", shortCommit(t.Base.Commit), shortCommit(t.Base.TracingCommit))
	default:
		fmt.Fprintf(b, "%s (commit %s, `KCHAT_BENCH_TRACING_BASE`).", t.Base.Ref, shortCommit(t.Base.Commit))
	}
	if t.Base.Skipped == "" {
		since := "the tracing commit"
		if t.Base.TracingCommit == "" {
			since = "the baseline"
		}
		head := "the working tree"
		if t.Base.Head != "" {
			head = "commit " + shortCommit(t.Base.Head)
		}
		if n := len(t.Base.OtherChanges); n > 0 {
			fmt.Fprintf(b, " Off and on run %s, where %d non-test Go file(s) of the two services' packages differ from %s besides: %s.", head, n, since, strings.Join(t.Base.OtherChanges, ", "))
		} else {
			fmt.Fprintf(b, " Off and on run %s, whose Go files in the two services' packages are those of %s.", head, since)
		}
	}
	b.WriteString(` "Services" is the user+system CPU time of the gateway and the answerer per answered question, what the goal is judged on; "with load generator" adds kbench's own, as the other scenarios count CPU (the broker, Redis and the OTLP receiver are never counted). Figures are medians; the runs are listed in the order they ran, and "spread" is their range over the median. The load is below the chat scenario's: a CPU cost per question needs a machine that keeps up, and a run that answers fewer questions than were due in its window is charged for work on the ones it did not finish.` + "\n\n")
	b.WriteString("| variant | build | services CPU µs/question | runs (in order) | spread | with load generator | p50 ms | p99 ms | answered / due in window | errors | spans/question |\n|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, v := range t.Variants {
		var answered, due, errs int64
		runs := make([]string, len(v.Runs))
		for i, r := range v.Runs {
			answered, due, errs = answered+r.Answered, due+r.Due, errs+r.Errors
			runs[i] = fmt.Sprintf("#%d: %s", r.Order, fmtNum(r.ServicesCPU))
		}
		spans := "—"
		if v.Name == tracingOn && v.SpansPerQuestion > 0 {
			spans = fmtNum(v.SpansPerQuestion)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %.0f%% | %s | %s | %s | %d / %d | %d | %s |\n", v.Name, v.Build, fmtNum(v.ServicesCPU), strings.Join(runs, ", "),
			v.spread(), fmtNum(v.CPUPerOp), fmtNum(v.P50), fmtNum(v.P99), answered, due, errs, spans)
	}
}

package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// medianIntro says, for a report of several runs, which runs and how
// their figures were combined; "" for a single run.
func medianIntro(r *Results) string {
	n := len(r.Runs)
	if n == 0 {
		return ""
	}
	runs := make([]string, n)
	for i, run := range r.Runs {
		runs[i] = fmt.Sprintf("run %d from %s (%s, [%s](%s))", i+1, run.Started.Format(time.RFC3339), run.Finished.Sub(run.Started).Round(time.Second), run.File, run.File)
	}
	return fmt.Sprintf("**Median of %d runs** (`KCHAT_BENCH_RUNS=%d make bench`, or `kbench median FILE...`): %s. "+
		"In the summary, kchat and baseline are each the median of that figure over the runs that have the row (the mean of the two middle ones for an even count) "+
		"and ratio is the ratio of these two medians; each goal is decided on the medians, except that a count that must be 0 in every run (duplicates, gaps) takes the highest run, "+
		"what a goal asks beyond its two figures (exactly-once kept, a run measured at all) must hold in every run, and a goal that its two figures do not decide alone must be met in every run. "+
		"A row's note is that of the run it names: the one whose kchat figure is the median (the lower middle for an even count), or the highest. "+
		"*Runs* below the summary lists each run's figures; the sections after it are the last run's (run %d).\n\n",
		n, n, strings.Join(runs, "; "), n)
}

// runsTable lists, for a report of several runs, every summary row's
// figures in each run and the spread of kchat's.
func runsTable(b *strings.Builder, r *Results) {
	n := len(r.Runs)
	if n == 0 {
		return
	}
	b.WriteString("\n## Runs\n\nEach run's kchat / baseline figures (kchat alone where there is no baseline) and verdict; spread is (highest − lowest) ÷ median of kchat's.\n\n| scenario | measure |")
	for i := range n {
		fmt.Fprintf(b, " run %d |", i+1)
	}
	b.WriteString(" spread |\n|---|---|" + strings.Repeat("---:|", n+1) + "\n")
	for _, row := range r.Rows {
		cells := slices.Repeat([]string{"—"}, n)
		var ks []float64
		for _, f := range row.PerRun {
			if f.Run < 1 || f.Run > n {
				continue
			}
			cell := fmtNum(f.Kchat)
			if f.Baseline != 0 || f.Ratio != 0 {
				cell += " / " + fmtNum(f.Baseline)
			}
			if f.Met != nil {
				cell += " " + verdict(Row{Met: f.Met})
			}
			cells[f.Run-1], ks = cell, append(ks, f.Kchat)
		}
		spread := "—"
		if len(ks) > 1 && medianOf(ks) != 0 {
			spread = fmt.Sprintf("%.0f%%", (slices.Max(ks)-slices.Min(ks))/medianOf(ks)*100)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", row.Scenario, row.Measure, strings.Join(cells, " | "), spread)
	}
}

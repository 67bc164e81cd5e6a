package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// A report of several runs (KCHAT_BENCH_RUNS, or `kbench median FILE...`)
// judges the goals as the median of full runs, as issue 20 asks: every
// figure of the summary is the median over the runs, and each goal is
// decided again on the medians.

// RunRef is one run of a report of several runs.
type RunRef struct {
	// File is the run's benchmarks.json, copied beside the report.
	File     string    `json:"file"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// RunFigures are a summary row's figures in one run (1 is the first).
type RunFigures struct {
	Run      int     `json:"run"`
	Kchat    float64 `json:"kchat"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"`
	Met      *bool   `json:"met,omitempty"`
}

// runsDir holds the runs of `make bench` with KCHAT_BENCH_RUNS, each a
// folder like a single run's output (gitignored).
var runsDir = filepath.Join("bin", "bench", "runs")

// runSeveral runs the whole suite cfg.Runs times, each run a process of
// its own (a fresh heap and fresh topics, as for a single run) that
// writes into runsDir/run-N, then writes the report of their medians
// into cfg.Out.
func runSeveral(ctx context.Context, cfg config) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.RemoveAll(runsDir); err != nil {
		return err
	}
	files := make([]string, cfg.Runs)
	for i := range files {
		out := filepath.Join(runsDir, fmt.Sprintf("run-%d", i+1))
		fmt.Fprintf(os.Stderr, "kbench: run %d of %d, into %s\n", i+1, cfg.Runs, out)
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), "KCHAT_BENCH_RUNS=1", "KCHAT_BENCH_OUT="+out) // the last setting wins
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("run %d of %d: %w (the runs before it are in %s: `kbench median FILE...` reports them)", i+1, cfg.Runs, err, runsDir)
		}
		files[i] = filepath.Join(out, "benchmarks.json")
	}
	return writeMedian(cfg.Out, files)
}

// writeMedian reads the benchmarks.json of each run in files and writes
// the report of their medians into out (default: docs, or bin/bench for
// short runs), with a copy of each run's file in out/bench-runs.
func writeMedian(out string, files []string) error {
	runs := make([]*Results, len(files))
	raw := make([][]byte, len(files))
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Results
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if len(r.Runs) > 0 {
			return fmt.Errorf("%s is a report of several runs already, not a run", f)
		}
		runs[i], raw[i] = &r, data
	}
	res, err := medianResults(runs)
	if err != nil {
		return err
	}
	if out == "" {
		out = defaultOut(res.Short)
	}
	if err := writeRunFiles(out, raw); err != nil {
		return err
	}
	for i := range res.Runs {
		res.Runs[i].File = runFile(i)
	}
	return writeResults(out, res)
}

// runFile is where, beside a report of several runs, run i's
// benchmarks.json is kept.
func runFile(i int) string { return filepath.Join("bench-runs", fmt.Sprintf("run-%d.json", i+1)) }

// writeRunFiles replaces the run files in dir with raw, one per run;
// none for a single run, whose report they would not describe.
func writeRunFiles(dir string, raw [][]byte) error {
	old, err := filepath.Glob(filepath.Join(dir, "bench-runs", "run-*.json"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	if len(raw) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "bench-runs"), 0o755); err != nil {
		return err
	}
	for i, data := range raw {
		if err := os.WriteFile(filepath.Join(dir, runFile(i)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// medianResults is the report of runs (in the order they ran): the
// summary rows are their medians (medianRows), with the rows and goals
// of this build; the scenarios' figures, the machine and the settings
// are the last run's.
func medianResults(runs []*Results) (*Results, error) {
	if len(runs) == 0 {
		return nil, errors.New("no run to report")
	}
	perRun := make([][]Row, len(runs))
	refs := make([]RunRef, len(runs))
	for i, r := range runs {
		if r.Short != runs[0].Short {
			return nil, errors.New("the runs mix short (KCHAT_BENCH_SHORT) and full runs")
		}
		perRun[i], refs[i] = rows(r), RunRef{Started: r.Started, Finished: r.Finished}
	}
	res := *runs[len(runs)-1]
	res.Started, res.Runs, res.Rows = runs[0].Started, refs, medianRows(perRun)
	return &res, nil
}

// medianRows merges the summary rows of several runs (runs[i] is run
// i+1's) into one row per figure, in the order the runs list them: a row
// is the same figure in every run when its scenario and measure are.
func medianRows(runs [][]Row) []Row {
	type figure struct {
		rows []Row
		runs []int
	}
	var order []*figure
	byKey := map[string]*figure{}
	for i, rs := range runs {
		seen := map[string]int{}
		at := -1 // where in order this run's previous row is
		for _, r := range rs {
			key := r.Scenario + "\x00" + r.Measure
			seen[key]++
			key = fmt.Sprintf("%s\x00%d", key, seen[key])
			f, ok := byKey[key]
			if !ok {
				f = &figure{}
				byKey[key] = f
				order = slices.Insert(order, at+1, f)
			}
			at = slices.Index(order, f)
			f.rows, f.runs = append(f.rows, r), append(f.runs, i+1)
		}
	}
	out := make([]Row, len(order))
	for i, f := range order {
		out[i] = medianRow(f.rows, f.runs, len(runs))
	}
	return out
}

// medianRow is one figure over the runs that have it (runs[i] is the
// number of rows[i]'s run, of total): kchat and baseline are the medians
// (the mean of the two middle ones for an even count), or the highest
// for a count that must be 0 in every run; the ratio is the ratio of
// the two. The goal is decided on them, with what it asks beyond them
// held in every run; a goal not decided by the two figures alone must
// be met in every run. The note is that of the run whose kchat figure
// is the median (the lower middle) or the highest.
func medianRow(rows []Row, runs []int, total int) Row {
	ks, bs := make([]float64, len(rows)), make([]float64, len(rows))
	byKchat := make([]int, len(rows))
	per := make([]RunFigures, len(rows))
	hasRatio, unmet := false, false
	for i, r := range rows {
		ks[i], bs[i], byKchat[i] = r.Kchat, r.Baseline, i
		per[i] = RunFigures{Run: runs[i], Kchat: r.Kchat, Baseline: r.Baseline, Ratio: r.Ratio, Met: r.Met}
		hasRatio = hasRatio || r.Ratio != 0
		unmet = unmet || r.unmet
	}
	slices.SortStableFunc(byKchat, func(a, b int) int { return cmp.Compare(rows[a].Kchat, rows[b].Kchat) })
	agg, pick := medianOf, byKchat[(len(rows)-1)/2]
	if rows[0].worst {
		agg, pick = slices.Max[[]float64], byKchat[len(rows)-1]
	}
	m := rows[pick]
	m.Kchat, m.Baseline, m.Ratio, m.PerRun, m.unmet = agg(ks), agg(bs), 0, per, unmet
	if hasRatio {
		m.Ratio = ratio(m.Kchat, m.Baseline)
	}
	m.Met = medianMet(m, rows)
	note := ""
	if len(rows) < total {
		note = fmt.Sprintf("only in %d of %d runs; ", len(rows), total)
	}
	if m.Note != "" {
		note += fmt.Sprintf("run %d: %s", runs[pick], m.Note)
	}
	m.Note = note
	return m
}

// medianMet decides m's goal on its medians (see medianRow).
func medianMet(m Row, rows []Row) *bool {
	if m.test != nil {
		return met(!m.unmet && m.test(m.Kchat, m.Baseline))
	}
	var decided bool
	ok := true
	for _, r := range rows {
		if r.Met != nil {
			decided, ok = true, ok && *r.Met
		}
	}
	if !decided {
		return nil
	}
	return met(ok)
}

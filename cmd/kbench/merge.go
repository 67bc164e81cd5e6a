package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ScenarioRun says when a scenario's figures were measured: the run (its
// start) and the scenario's own start and end.
type ScenarioRun struct {
	Run      time.Time `json:"run_started"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// keepEarlier fills r with the scenarios it did not measure from the
// benchmarks.json already in dir, so that a run of some scenarios
// (KCHAT_BENCH_ONLY) updates them in docs/benchmarks.{md,json} and leaves
// the others' figures there, each with the time it was measured. A file
// of the other mode (short or full) is not mixed in. It returns the
// scenarios kept.
func keepEarlier(dir string, r *Results) ([]string, error) {
	path := filepath.Join(dir, "benchmarks.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	kept, err := mergeResults(r, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kept, nil
}

// mergeResults copies into r each scenario of the earlier results in
// prevJSON that r lacks. It relies on each scenario's key in
// benchmarks.json being its name in scenarios (a test checks it).
func mergeResults(r *Results, prevJSON []byte) ([]string, error) {
	var prev Results
	if err := json.Unmarshal(prevJSON, &prev); err != nil {
		return nil, err
	}
	if prev.Short != r.Short {
		return nil, nil
	}
	var old, cur map[string]json.RawMessage
	if err := json.Unmarshal(prevJSON, &old); err != nil {
		return nil, err
	}
	curJSON, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(curJSON, &cur); err != nil {
		return nil, err
	}
	if r.Scenarios == nil {
		r.Scenarios = map[string]ScenarioRun{}
	}
	var kept []string
	for _, name := range scenarios {
		v, ok := old[name]
		if _, ran := cur[name]; ran || !ok || string(v) == "null" {
			continue
		}
		cur[name] = v
		kept = append(kept, name)
		when, ok := prev.Scenarios[name]
		if !ok { // written before scenarios had times of their own
			when = ScenarioRun{Run: prev.Started, Started: prev.Started, Finished: prev.Finished}
		}
		r.Scenarios[name] = when
	}
	if len(kept) == 0 {
		return nil, nil
	}
	merged, err := json.Marshal(cur)
	if err != nil {
		return nil, err
	}
	var out Results
	if err := json.Unmarshal(merged, &out); err != nil {
		return nil, err
	}
	out.Scenarios = r.Scenarios
	*r = out
	return kept, nil
}

// provenance says, when r's figures come from more than one run, which
// scenarios come from which; "" otherwise.
func provenance(r *Results) string {
	byRun := map[time.Time][]string{}
	for _, name := range scenarios {
		if s, ok := r.Scenarios[name]; ok {
			byRun[s.Run] = append(byRun[s.Run], name)
		}
	}
	if len(byRun) < 2 {
		return ""
	}
	runs := make([]time.Time, 0, len(byRun))
	for t := range byRun {
		runs = append(runs, t)
	}
	slices.SortFunc(runs, func(a, b time.Time) int { return b.Compare(a) }) // newest first
	parts := make([]string, len(runs))
	for i, t := range runs {
		parts[i] = fmt.Sprintf("%s from the run of %s", strings.Join(byRun[t], ", "), t.Format(time.RFC3339))
	}
	return fmt.Sprintf("The figures come from %d runs (a run of some scenarios, `KCHAT_BENCH_ONLY`, replaces theirs and keeps the others'): %s.\n\n", len(runs), strings.Join(parts, "; "))
}

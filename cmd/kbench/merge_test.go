package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScenarioNamesAreJSONKeys: merging finds a scenario's figures in
// benchmarks.json under its name.
func TestScenarioNamesAreJSONKeys(t *testing.T) {
	// Every scenario's result present: each pointer field of Results.
	r := &Results{}
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer {
			f.Set(reflect.New(f.Type().Elem()))
		}
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		t.Fatal(err)
	}
	for _, name := range scenarios {
		if _, ok := keys[name]; !ok {
			t.Errorf("scenario %q is not a key of benchmarks.json", name)
		}
	}
}

// TestKeepEarlierKeepsTheScenariosNotRun: a run of one scenario replaces
// that scenario's figures and keeps the others', each with when it was
// measured; benchmarks.md says which run each comes from.
func TestKeepEarlierKeepsTheScenariosNotRun(t *testing.T) {
	dir := t.TempDir()
	then := time.Date(2026, 11, 27, 0, 22, 40, 0, time.UTC)
	// A file from before scenarios had times of their own.
	prev := &Results{Started: then, Finished: then.Add(5 * time.Minute),
		Produce: &ProduceResult{RecordBytes: 1}, Huma: &HumaResult{Rounds: 7}, Memory: &MemoryResult{Connections: 10000}}
	data, err := json.Marshal(prev)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "benchmarks.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	r := &Results{Started: now, Finished: now.Add(time.Minute), Produce: &ProduceResult{RecordBytes: 2},
		Scenarios: map[string]ScenarioRun{"produce": {Run: now, Started: now, Finished: now.Add(time.Minute)}}}
	kept, err := keepEarlier(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"huma", "memory"}; !slices.Equal(kept, want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	if r.Produce.RecordBytes != 2 || r.Huma == nil || r.Huma.Rounds != 7 || r.Memory == nil || r.Chat != nil {
		t.Fatalf("merged %+v", r)
	}
	if r.Scenarios["huma"].Run != then || r.Scenarios["produce"].Run != now || !r.Started.Equal(now) {
		t.Fatalf("times %+v, started %s", r.Scenarios, r.Started)
	}
	md := markdown(r)
	if want := "produce from the run of 2026-12-03T10:00:00Z; huma, memory from the run of 2026-11-27T00:22:40Z"; !strings.Contains(md, want) {
		t.Errorf("benchmarks.md does not say where the figures come from (want %q)", want)
	}

	// Short and full figures are not mixed; nothing to keep is no error.
	short := &Results{Short: true, Scenarios: map[string]ScenarioRun{}}
	if kept, err := keepEarlier(dir, short); err != nil || kept != nil || short.Huma != nil {
		t.Errorf("short run kept %v (%v)", kept, err)
	}
	if kept, err := keepEarlier(t.TempDir(), &Results{}); err != nil || kept != nil {
		t.Errorf("empty folder: kept %v (%v)", kept, err)
	}
	if provenance(&Results{Scenarios: map[string]ScenarioRun{"produce": {Run: now}, "fetch": {Run: now}}}) != "" {
		t.Error("one run's figures are said to come from several")
	}
}

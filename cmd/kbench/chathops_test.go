package main

import (
	"testing"
	"time"
)

func TestMatchHopsCountsDuplicatesGapsAndBacklog(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rec := func(partition int32, offset int64, ms int) []hopRecord {
		return []hopRecord{{partition, offset, t0.Add(time.Duration(ms) * time.Millisecond)}}
	}
	queries := map[string][]hopRecord{
		"a": rec(0, 0, 0), "b": rec(0, 1, 0), "c": rec(0, 2, 0), "d": rec(0, 3, 0), // b skipped, d still on its way
		"e": rec(1, 0, 0),
	}
	prompts := map[string][]hopRecord{
		"a": rec(0, 0, 10), "c": rec(0, 2, 10),
		"e": append(rec(1, 0, 10), rec(1, 2, 11)...), // written twice for one query
	}
	answers := map[string][]hopRecord{
		"a": rec(2, 0, 30), // c's prompt is the last of its partition: not a gap
		"e": rec(1, 0, 40),
	}
	got := matchHops(queries, prompts, answers)
	if got.Matched != 2 || got.Duplicates != 1 || got.Gaps != 1 || got.Unanswered != 3 {
		t.Errorf("matched %d, duplicates %d, gaps %d, unanswered %d; want 2, 1, 1, 3", got.Matched, got.Duplicates, got.Gaps, got.Unanswered)
	}
	// e's first prompt counts: 10 ms to it, then 30 ms to its answer.
	if got.ToPrompt.Max < 10 || got.ToPrompt.Max > 10.1 || got.ToAnswer.P50 < 20 || got.ToAnswer.Max < 30 || got.ToAnswer.Max > 30.1 {
		t.Errorf("query → prompt max %v ms, want 10; prompt → answer p50 %v, max %v ms, want 20, 30", got.ToPrompt.Max, got.ToAnswer.P50, got.ToAnswer.Max)
	}
}

func TestMatchHopsCleanRun(t *testing.T) {
	at := func(p int32, o int64) []hopRecord { return []hopRecord{{p, o, time.Unix(0, 0)}} }
	q := map[string][]hopRecord{"a": at(0, 0), "b": at(0, 1), "twice": append(at(1, 0), at(1, 1)...)}
	p := map[string][]hopRecord{"a": at(0, 0), "b": at(0, 2), "twice": append(at(1, 0), at(1, 2)...)}
	got := matchHops(q, p, p)
	if got.Duplicates != 0 || got.Gaps != 0 || got.Unanswered != 0 || got.Matched != 3 {
		t.Errorf("%+v, want every question matched once, no duplicate (a question published twice has two prompts), no gap", got)
	}
}

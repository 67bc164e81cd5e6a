package main

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Hops splits a round trip by the Kafka timestamps of its records (set
// when each was produced): query → prompt is the retrieve stage's share
// (the query's wait for a fetch, processing, and the transaction), prompt
// → answer the generate stage's.
//
// It also checks exactly-once on the topics, as read_committed readers
// see them: Duplicates counts the prompts and answers beyond one per input
// record of their question, Gaps the questions (or prompts) left without an output
// while a later one of the same input partition has one (a stage reads a
// partition in order, so that is a skipped record, not a late one), and
// Unanswered the questions still without an answer when the topics were
// read, behind every answered one (the stages' backlog).
type Hops struct {
	Matched    int         `json:"matched"`
	ToPrompt   Percentiles `json:"query_to_prompt"`
	ToAnswer   Percentiles `json:"prompt_to_answer"`
	Duplicates int         `json:"duplicates"`
	Gaps       int         `json:"gaps"`
	Unanswered int         `json:"unanswered"`
}

// hopRecord is one record of the three topics, by correlation id.
type hopRecord struct {
	partition int32
	offset    int64
	at        time.Time
}

// hopTimes reads the three topics under prefix and matches records by
// correlation id (kchat's header, or the key in the chain).
func hopTimes(ctx context.Context, brokers []string, prefix string) (Hops, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(prefix+"query", prefix+"prompt", prefix+"answer"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return Hops{}, err
	}
	defer cl.Close()
	// The end offsets now: read until every partition reached them.
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, prefix+"query", prefix+"prompt", prefix+"answer")
	if err != nil {
		return Hops{}, err
	}
	left := 0
	ends.Each(func(o kadm.ListedOffset) { left += int(o.Offset) })
	at := map[string]map[string][]hopRecord{"query": {}, "prompt": {}, "answer": {}}
	for left > 0 && ctx.Err() == nil {
		pollCtx, cancelPoll := context.WithTimeout(ctx, 2*time.Second)
		fetches := cl.PollFetches(pollCtx)
		cancelPoll()
		fetches.EachRecord(func(r *kgo.Record) {
			left--
			id := string(r.Key)
			for _, h := range r.Headers {
				if h.Key == "kchat-correlation-id" {
					id = string(h.Value)
				}
			}
			topic := at[strings.TrimPrefix(r.Topic, prefix)]
			topic[id] = append(topic[id], hopRecord{r.Partition, r.Offset, r.Timestamp})
		})
		// Transaction markers take offsets too: stop once nothing more comes.
		if fetches.NumRecords() == 0 {
			break
		}
	}
	return matchHops(at["query"], at["prompt"], at["answer"]), nil
}

// matchHops times the hops of the questions with one prompt and one
// answer, and counts duplicates, gaps and the backlog (see Hops).
func matchHops(queries, prompts, answers map[string][]hopRecord) Hops {
	var hops Hops
	toPrompt, toAnswer := newLatencies(), newLatencies()
	for id, q := range queries {
		p, a := prompts[id], answers[id]
		if len(p) > 0 && len(a) > 0 {
			hops.Matched++
			toPrompt.record(p[0].at.Sub(q[0].at))
			toAnswer.record(a[0].at.Sub(p[0].at))
		}
	}
	hops.ToPrompt, hops.ToAnswer = toPrompt.percentiles(), toAnswer.percentiles()
	hops.Duplicates = duplicates(queries, prompts) + duplicates(prompts, answers)
	hops.Gaps = gaps(queries, prompts) + gaps(prompts, answers)
	for id := range queries {
		if len(answers[id]) == 0 {
			hops.Unanswered++
		}
	}
	return hops
}

// duplicates counts the outputs beyond one per input record of the same
// correlation id (a question published twice is two inputs).
func duplicates(ins, outs map[string][]hopRecord) (n int) {
	for id, rs := range outs {
		n += max(0, len(rs)-max(1, len(ins[id])))
	}
	return n
}

// gaps counts the inputs without an output that come, in their input
// partition, before an input that has one: a stage skipped them. Those
// after the last input with an output may still be on their way.
func gaps(ins, outs map[string][]hopRecord) (skipped int) {
	type in struct {
		offset int64
		done   bool
	}
	byPartition := map[int32][]in{}
	for id, rs := range ins {
		r := rs[0]
		byPartition[r.partition] = append(byPartition[r.partition], in{r.offset, len(outs[id]) > 0})
	}
	for _, part := range byPartition {
		slices.SortFunc(part, func(a, b in) int { return cmp.Compare(a.offset, b.offset) })
		last := -1
		for i, x := range part {
			if x.done {
				last = i
			}
		}
		for _, x := range part[:last+1] {
			if !x.done {
				skipped++
			}
		}
	}
	return skipped
}

package main

import (
	"context"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Hops splits a round trip by the Kafka timestamps of its records (set
// when each was produced): query → prompt is the retrieve stage's share
// (the query's wait for a fetch, processing, and the transaction), prompt
// → answer the generate stage's.
type Hops struct {
	Matched  int         `json:"matched"`
	ToPrompt Percentiles `json:"query_to_prompt"`
	ToAnswer Percentiles `json:"prompt_to_answer"`
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
	at := map[string]map[string]time.Time{"query": {}, "prompt": {}, "answer": {}}
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
			at[strings.TrimPrefix(r.Topic, prefix)][id] = r.Timestamp
		})
		// Transaction markers take offsets too: stop once nothing more comes.
		if fetches.NumRecords() == 0 {
			break
		}
	}
	var hops Hops
	toPrompt, toAnswer := newLatencies(), newLatencies()
	for id, q := range at["query"] {
		p, okP := at["prompt"][id]
		a, okA := at["answer"][id]
		if okP && okA {
			hops.Matched++
			toPrompt.record(p.Sub(q))
			toAnswer.record(a.Sub(p))
		}
	}
	hops.ToPrompt, hops.ToAnswer = toPrompt.percentiles(), toAnswer.percentiles()
	return hops, nil
}

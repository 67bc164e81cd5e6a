package rag

import (
	"cmp"
	"context"
	"slices"
)

// How a follow-up's search weighs its context (docs/quality.md,
// "Follow-ups", says what was measured to choose them).
var (
	// contextWeight is what the context's BM25 score counts against the
	// question's.
	contextWeight = 0.5
	// bothBonus raises a passage that matches both the question and its
	// context: a follow-up asks about where the two meet ("and what does
	// the WebSocket chat do then?" after "Kafka is down").
	bothBonus = 0.25
)

// candidates is how many hits of the question and of its context a
// follow-up's search weighs together.
const candidates = MaxTopK

// fuse searches the question and its context each on its own, so each
// score is BM25 as calibrated (a single query would share one coord and
// one query norm between them), and scores a passage by its question
// score plus contextWeight times its context score, raised by bothBonus
// when it matches both, and ranks it the same way by the two ranks: best
// first.
func (ix *Index) fuse(ctx context.Context, text, context string) ([]hit, error) {
	asked, err := ix.hits(ctx, text, candidates)
	if err != nil {
		return nil, err
	}
	followed, err := ix.hits(ctx, context, candidates)
	if err != nil {
		return nil, err
	}
	scores := map[int]float64{}
	ranks := map[int]float64{}
	inAsked := map[int]bool{}
	terms := map[int]int{}
	for _, h := range asked {
		scores[h.doc] += h.score
		ranks[h.doc] += h.rank
		inAsked[h.doc] = true
		terms[h.doc] = h.terms
	}
	for _, h := range followed {
		scores[h.doc] += contextWeight * h.score
		ranks[h.doc] += contextWeight * h.rank
		if inAsked[h.doc] {
			scores[h.doc] *= 1 + bothBonus
			ranks[h.doc] *= 1 + bothBonus
		}
	}
	out := make([]hit, 0, len(scores))
	for doc, score := range scores {
		out = append(out, hit{doc: doc, score: score, rank: ranks[doc], terms: terms[doc]})
	}
	sortHits(out)
	return out, nil
}

// sortHits orders hits by rank, best first (ties by position).
func sortHits(hs []hit) {
	slices.SortFunc(hs, func(a, b hit) int {
		if c := cmp.Compare(b.rank, a.rank); c != 0 {
			return c
		}
		return cmp.Compare(a.doc, b.doc)
	})
}

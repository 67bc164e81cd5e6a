package rag

// fileWeight is what the best other passage of a passage's file that
// matches the question adds to its rank (docs/quality.md, "Round 2"): a
// file with several passages on the question is about it, where a single
// passage may match on one lucky word.
const fileWeight = 0.2

// byFile ranks each hit by its rank plus fileWeight times the score of
// another of its file's best hits, best first. Scores, which the
// relevance bars cut, stay BM25's.
func (ix *Index) byFile(hs []hit) []hit {
	// hs come best first (by rank): a file's first two hits are its best.
	best := map[string][2]int{}
	for i, h := range hs {
		src := ix.passages[h.doc].Source
		b, ok := best[src]
		switch {
		case !ok:
			best[src] = [2]int{i, -1}
		case b[1] < 0:
			best[src] = [2]int{b[0], i}
		}
	}
	out := make([]hit, len(hs))
	for i, h := range hs {
		b := best[ix.passages[h.doc].Source]
		other := b[0]
		if other == i {
			other = b[1]
		}
		if other >= 0 {
			h.rank += fileWeight * hs[other].score
		}
		out[i] = h
	}
	sortHits(out)
	return out
}

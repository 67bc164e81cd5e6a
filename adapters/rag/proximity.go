package rag

import (
	"github.com/blevesearch/bleve/v2/search"
)

// proximityWeight is how much a passage's rank rises when it holds every
// pair of the question's neighbouring words side by side, as the question
// does ("lease duration", "session id"): such a passage speaks of the
// thing asked about, where one holding the words apart may only share its
// vocabulary. A pair counts when its words stand next to each other, stop
// words aside (docs/quality.md, "Round 3": 0.1 to 1 and gaps of 1 to 3
// measured). Only the rank moves: the relevance bars still cut BM25's
// score.
const proximityWeight = 0.25

// questionPairs are the distinct pairs of neighbouring analysed terms of
// text, in order (stop words dropped, thesaurus words merged).
func (ix *Index) questionPairs(text string) [][2]string {
	a := ix.idx.Mapping().AnalyzerNamed(analyzerName)
	if a == nil {
		return nil
	}
	tokens := a.Analyze([]byte(text))
	seen := map[[2]string]bool{}
	var out [][2]string
	for i := 1; i < len(tokens); i++ {
		p := [2]string{string(tokens[i-1].Term), string(tokens[i].Term)}
		if p[0] == p[1] || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}

// proximity is the share of pairs whose second term directly follows the
// first somewhere in a hit's term locations.
func proximity(pairs [][2]string, locs search.TermLocationMap) float64 {
	if len(pairs) == 0 {
		return 0
	}
	n := 0
	for _, p := range pairs {
		if adjacent(locs[p[0]], locs[p[1]]) {
			n++
		}
	}
	return float64(n) / float64(len(pairs))
}

// adjacent reports whether a location of second directly follows one of
// first.
func adjacent(first, second search.Locations) bool {
	for _, a := range first {
		for _, b := range second {
			if b.Pos == a.Pos+1 {
				return true
			}
		}
	}
	return false
}

package llm

import (
	"math"
	"sort"

	"github.com/kchat/kchat/adapters/internal/thesaurus"
	"github.com/kchat/kchat/domain"
)

// How sentences are weighed against the question (docs/quality.md,
// "Answers", says what was measured to choose these).
const (
	// synonymWeight is what a word the question's word stands for counts
	// (thesaurus: "LLM" asked, "generator" written).
	synonymWeight = 0.5
	// contextWeight is what a word of the question a follow-up follows up
	// on counts (domain.FollowUpContext).
	contextWeight = 0.5
	// headingWeight is what a question word in a passage's heading counts
	// for each of its sentences, against the word in the sentence itself:
	// the passage whose heading matches is preferred.
	headingWeight = 0.5
	// minCoverage is the share of the question's weight a sentence must
	// match, in its own words or (at headingWeight) its heading's, to be
	// quoted at all: relevant to the question by itself, not only sharing
	// a common word ("Kafka") with it.
	minCoverage = 0.4
	// minRelative drops a runner-up scoring under this share of the best
	// sentence: a weak match adds noise, not information.
	minRelative = 0.5
	// maxSimilarity skips a sentence sharing this share of its terms with
	// one already chosen (the same fact in another passage).
	maxSimilarity = 0.6
	// diversity weighs how much overlap with the chosen sentences costs.
	diversity = 0.5
	// retrievalWeight is the power of a passage's retrieval score, against
	// the best passage's, that scales its sentences: a sentence of a
	// weaker passage (often another file) must match the question
	// clearly better to be quoted.
	retrievalWeight = 0.25
)

// synonyms maps a stem to the stems of the words it stands for. The
// generator does not know which knowledge base its passages come from, so
// it takes kchat's own groups too: they only reorder the sentences of
// passages the retriever chose.
var synonyms = thesaurus.Map(stemWord, thesaurus.General, thesaurus.KChat)

// stemWord is the stem of one word as terms finds it.
func stemWord(w string) string {
	if ts := terms(w); len(ts) == 1 {
		return ts[0]
	}
	return w
}

// queryTerm is a term sentences are matched against, with its weight.
type queryTerm struct {
	stem   string
	weight float64
	// counted tells whether the term adds to what a sentence must cover
	// (a synonym does not: it stands in for a word that does).
	counted bool
}

// queryTerms are the question's terms (compound phrases read as their
// word), the words they stand for and, for a follow-up, the terms of the
// question it follows up on.
func queryTerms(p domain.Prompt) []queryTerm {
	var out []queryTerm
	seen := map[string]bool{}
	add := func(stems []string, w float64, counted bool) {
		for _, s := range stems {
			if !seen[s] {
				seen[s] = true
				out = append(out, queryTerm{stem: s, weight: w, counted: counted})
			}
		}
	}
	question := terms(thesaurus.Compound(p.Question))
	add(question, 1, true)
	for _, t := range question {
		add(synonyms[t], synonymWeight, false)
	}
	if c := domain.FollowUpContext(p.Question, p.History); c != "" {
		add(terms(thesaurus.Compound(c)), contextWeight, true)
	}
	return out
}

type candidate struct {
	sentence
	terms []string
	score float64
	// own is what the sentence matches in its own words; covered what it
	// covers of the question with its heading's help.
	own, covered float64
}

// choose returns the sentences to quote, most relevant first.
func choose(prompt domain.Prompt) []candidate {
	query := queryTerms(prompt)
	if len(query) == 0 {
		return nil
	}
	var cands []candidate
	for pi, p := range prompt.Passages {
		for si, s := range splitSentences(p.Text) {
			cands = append(cands, candidate{
				sentence: sentence{passage: pi, pos: si, text: clip(unmark(s), maxAnswerLen-markerRoom)},
				terms:    terms(thesaurus.Compound(s)),
			})
		}
	}
	if len(cands) == 0 {
		return nil
	}
	total := score(cands, prompt.Passages, query)

	ranked := make([]int, 0, len(cands))
	best := -1
	for i, c := range cands {
		if c.own == 0 {
			continue // relevant through its heading only
		}
		if best < 0 || c.score > cands[best].score {
			best = i
		}
		if c.covered >= minCoverage*total {
			ranked = append(ranked, i)
		}
	}
	switch {
	case best < 0:
		return nil
	case len(ranked) == 0:
		// Nothing covers the question well: the sentence that matches it
		// best rather than no answer.
		ranked = append(ranked, best)
	}
	sort.SliceStable(ranked, func(a, b int) bool { return cands[ranked[a]].score > cands[ranked[b]].score })
	return pick(cands, ranked)
}

// score sets each candidate's score, own and covered against the query
// terms, and returns what covering the whole question takes.
func score(cands []candidate, passages []domain.Passage, query []queryTerm) (total float64) {
	headings := make([][]string, len(passages))
	for pi, p := range passages {
		headings[pi] = terms(thesaurus.Compound(p.Title))
	}
	inText := make([]float64, len(cands))
	inHeading := make([]float64, len(passages))
	for _, q := range query {
		for pi := range passages {
			inHeading[pi] = bestMatch(q.stem, headings[pi])
		}
		df := 0
		for i, c := range cands {
			inText[i] = bestMatch(q.stem, c.terms)
			if inText[i] > 0 || inHeading[c.passage] > 0 {
				df++
			}
		}
		if df == 0 {
			continue
		}
		// Words most sentences share tell them apart least.
		w := q.weight * math.Log(1+float64(len(cands))/float64(df))
		if q.counted {
			total += w
		}
		for i := range cands {
			c := &cands[i]
			h := headingWeight * inHeading[c.passage]
			c.own += w * inText[i]
			c.score += w * (inText[i] + h)
			// A synonym's match covers for its word's.
			c.covered += w * math.Max(inText[i], h)
		}
	}
	for i := range cands {
		c := &cands[i]
		// Long sentences match more words by their length alone.
		if n := len(c.terms); n > 20 {
			c.score /= math.Sqrt(float64(n) / 20)
		}
		// Passages come best first: break near-ties toward the retriever's
		// order.
		c.score *= 1 + 0.05/float64(c.passage+1)
		if top, own := passages[0].Score, passages[c.passage].Score; top > 0 && own > 0 {
			c.score *= math.Pow(own/top, retrievalWeight)
		}
	}
	return total
}

// pick takes up to maxSentences of the ranked candidates within
// maxAnswerLen by maximal marginal relevance: the best score net of
// overlap with what is already chosen, in the order chosen.
func pick(cands []candidate, ranked []int) []candidate {
	best := cands[ranked[0]].score
	var picked []candidate
	used := map[int]bool{}
	length := 0
	for len(picked) < maxSentences {
		pick, pickScore := -1, 0.0
		for _, i := range ranked {
			c := cands[i]
			if used[i] || c.score < minRelative*best || length+cost(c) > maxAnswerLen {
				continue
			}
			sim := 0.0
			for _, p := range picked {
				sim = math.Max(sim, similarity(c.terms, p.terms))
			}
			if sim > maxSimilarity {
				continue
			}
			if s := c.score - diversity*best*sim; pick < 0 || s > pickScore {
				pick, pickScore = i, s
			}
		}
		if pick < 0 {
			break
		}
		used[pick] = true
		picked = append(picked, cands[pick])
		length += cost(cands[pick])
	}
	return picked
}

// bestMatch is how well term q matches the best of ts (termMatch).
func bestMatch(q string, ts []string) float64 {
	m := 0.0
	for _, t := range ts {
		m = math.Max(m, termMatch(q, t))
	}
	return m
}

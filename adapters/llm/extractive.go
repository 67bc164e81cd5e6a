package llm

import (
	"context"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

var _ ports.Generator = (*Extractive)(nil)

// NoAnswer is the whole answer when the passages do not match the question.
const NoAnswer = "I could not find anything about that in the knowledge base."

const (
	// maxSentences and maxAnswerLen keep the answer a short quote.
	maxSentences = 3
	maxAnswerLen = 600
	// minRelative drops a runner-up scoring under this share of the best
	// sentence: a weak match adds noise, not information.
	minRelative = 0.5
	// maxSimilarity skips a sentence sharing this share of its terms with
	// one already chosen (the same fact in another passage).
	maxSimilarity = 0.6
	// diversity weighs how much overlap with the chosen sentences costs.
	diversity = 0.5
	// markerRoom is what a " [n] " after a sentence may take.
	markerRoom = 8
)

// Extractive answers by quoting the sentences of the passages that best
// match the question, each followed by its passage's [n]. It calls no model:
// the same prompt always gets the same answer. It streams the answer a
// clause at a time, as a model would, so streaming shows without one.
// Safe for concurrent use.
type Extractive struct {
	// Pace is the wait before each piece after the first
	// (KCHAT_EXTRACTIVE_PACE); 0 emits them all at once.
	Pace time.Duration
}

// NewExtractive returns the extractive generator, unpaced.
func NewExtractive() *Extractive { return &Extractive{} }

type candidate struct {
	sentence
	terms []string
	score float64
}

// Generate picks up to three sentences (about 600 characters at most) by
// the IDF-weighted question words they contain, preferring ones that say
// something new, and returns them in passage order. It returns NoAnswer
// when no sentence shares a content word with the question. onChunk gets
// the answer a clause at a time (each sentence cut after its commas,
// semicolons and colons; its marker comes with its last clause), Pace
// apart. Only a ctx that ended makes it fail.
func (e Extractive) Generate(ctx context.Context, prompt domain.Prompt, onChunk func(string)) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	chosen := choose(prompt)
	if len(chosen) == 0 {
		if onChunk != nil {
			onChunk(NoAnswer)
		}
		return NoAnswer, nil
	}
	var pieces []string
	for i, c := range chosen {
		clauses := splitClauses(c.text)
		clauses[len(clauses)-1] += " [" + strconv.Itoa(c.passage+1) + "]"
		if i < len(chosen)-1 {
			clauses[len(clauses)-1] += " "
		}
		pieces = append(pieces, clauses...)
	}
	var b strings.Builder
	for i, p := range pieces {
		if i > 0 && e.Pace > 0 && onChunk != nil {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(e.Pace):
			}
		}
		b.WriteString(p)
		if onChunk != nil {
			onChunk(p)
		}
	}
	return b.String(), nil
}

// splitClauses cuts s after each ", ", "; " and ": ", the separator kept
// with the clause it ends, so the clauses make up s.
func splitClauses(s string) []string {
	var out []string
	start := 0
	for i := 0; i+1 < len(s); i++ {
		if (s[i] == ',' || s[i] == ';' || s[i] == ':') && s[i+1] == ' ' {
			out = append(out, s[start:i+2])
			start = i + 2
		}
	}
	if start < len(s) || len(out) == 0 {
		out = append(out, s[start:])
	} else {
		// s ended with a separator: it belongs to the last clause.
		out[len(out)-1] += s[start:]
	}
	return out
}

// choose returns the sentences to quote, in passage and reading order.
func choose(prompt domain.Prompt) []candidate {
	question := terms(prompt.Question)
	if len(question) == 0 {
		return nil
	}
	var cands []candidate
	for pi, p := range prompt.Passages {
		for si, s := range splitSentences(p.Text) {
			cands = append(cands, candidate{
				sentence: sentence{passage: pi, pos: si, text: clip(unmark(s), maxAnswerLen-markerRoom)},
				terms:    terms(s),
			})
		}
	}
	if len(cands) == 0 {
		return nil
	}

	// match[q][i] is how well sentence i matches question term q.
	match := make([][]float64, len(question))
	for qi, q := range question {
		match[qi] = make([]float64, len(cands))
		df := 0
		for i, c := range cands {
			for _, t := range c.terms {
				match[qi][i] = math.Max(match[qi][i], termMatch(q, t))
			}
			if match[qi][i] > 0 {
				df++
			}
		}
		if df == 0 {
			continue
		}
		// Words most sentences share tell them apart least.
		idf := math.Log(1 + float64(len(cands))/float64(df))
		for i := range cands {
			cands[i].score += match[qi][i] * idf
		}
	}
	for i := range cands {
		// Long sentences match more words by their length alone.
		if n := len(cands[i].terms); n > 20 {
			cands[i].score /= math.Sqrt(float64(n) / 20)
		}
		// Passages come best first: break near-ties toward the retriever's
		// order.
		cands[i].score *= 1 + 0.05/float64(cands[i].passage+1)
	}

	ranked := make([]int, 0, len(cands))
	for i, c := range cands {
		if c.score > 0 {
			ranked = append(ranked, i)
		}
	}
	if len(ranked) == 0 {
		return nil
	}
	sort.SliceStable(ranked, func(a, b int) bool { return cands[ranked[a]].score > cands[ranked[b]].score })

	best := cands[ranked[0]].score
	var picked []candidate
	used := map[int]bool{}
	length := 0
	for len(picked) < maxSentences {
		// Maximal marginal relevance: the best score net of overlap with
		// what is already chosen.
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
	sort.SliceStable(picked, func(a, b int) bool {
		if picked[a].passage != picked[b].passage {
			return picked[a].passage < picked[b].passage
		}
		return picked[a].pos < picked[b].pos
	})
	return picked
}

// footnote is a bracketed number in a passage's own text (a footnote or a
// reference link): quoted as it is, it would read as a citation of
// another passage, or of none.
var footnote = regexp.MustCompile(`\s*\[\d+\]`)

// unmark drops a quoted sentence's own bracketed numbers: in the answer,
// [n] means only "passage n".
func unmark(s string) string { return footnote.ReplaceAllString(s, "") }

// cost is the answer length a candidate takes with its marker and space.
func cost(c candidate) int {
	return len(c.text) + len(" [] ") + len(strconv.Itoa(c.passage+1))
}

// similarity is the Jaccard index of two term sets.
func similarity(a, b []string) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	in := map[string]bool{}
	for _, t := range a {
		in[t] = true
	}
	both := 0
	for _, t := range b {
		if in[t] {
			both++
		}
	}
	return float64(both) / float64(len(a)+len(b)-both)
}

// clip shortens a sentence longer than n bytes at a word boundary, marking
// the cut with "…", so one run-on passage cannot blow the answer's bound.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if sp := strings.LastIndexByte(s[:cut], ' '); sp > n/2 {
		cut = sp
	}
	return strings.TrimRight(s[:cut], " ,;:") + "…"
}

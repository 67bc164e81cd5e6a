package llm

import (
	"context"
	"regexp"
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

// Generate picks up to three sentences (about 600 characters at most) by
// the IDF-weighted question words they contain (and, for a follow-up, the
// words of the question it follows up on), preferring passages whose
// heading matches and sentences that say something new, and returns them
// most relevant first. A sentence is quoted only if it covers enough of
// the question by itself. It returns NoAnswer when no sentence shares a
// content word with the question. onChunk gets
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

package llm

import (
	"strings"
	"unicode"
)

// stopWords carry no topic: they neither score a sentence nor count as
// the shared word an answer needs.
var stopWords = toSet(`a about above after again against all also am an and any are
as at be because been before being below between both but by can cannot could did
do does doing done during each either else even ever every few for from
further get gets got had has have having he her here hers him his how i if in into
is it its itself just let like may me might more most much must my no nor not now
of off on once one only or other our ours out over own please same shall she many
should so some such than that the their theirs them then there these they this
those through to too under until up upon us use used using very via was we were
what when where whether which while who whom whose why will with within without
would yes yet you your yours tell explain show know want need`)

func toSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// terms returns the stemmed content words of s, each once, in order of
// first appearance (order keeps float sums over them deterministic).
func terms(s string) []string {
	var out []string
	seen := map[string]bool{}
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
	})
	for _, w := range words {
		w = strings.Trim(w, "_")
		if len([]rune(w)) < 2 || stopWords[w] {
			continue
		}
		st := stem(w)
		if !seen[st] {
			seen[st] = true
			out = append(out, st)
		}
	}
	return out
}

// stem strips common English inflections so "partitions", "partitioned"
// and "partitioning" meet; it is deliberately light, and the prefix match
// in termMatch covers derivations ("config", "configuration").
func stem(w string) string {
	n := len(w)
	switch {
	case n > 4 && (strings.HasSuffix(w, "ies") || strings.HasSuffix(w, "ied")):
		return w[:n-3] + "y"
	case n > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") &&
		!strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		w = w[:n-1]
	case n > 5 && strings.HasSuffix(w, "ing"):
		w = w[:n-3]
	case n > 4 && strings.HasSuffix(w, "ed"):
		w = w[:n-2]
	}
	if len(w) > 4 && strings.HasSuffix(w, "e") {
		w = w[:len(w)-1]
	}
	return w
}

// termMatch is how well a question term q matches a sentence term t: 1 for
// the same stem, 0.5 when one (of at least 4 letters) starts the other.
func termMatch(q, t string) float64 {
	if q == t {
		return 1
	}
	short, long := q, t
	if len(short) > len(long) {
		short, long = long, short
	}
	if len(short) >= 4 && strings.HasPrefix(long, short) {
		return 0.5
	}
	return 0
}

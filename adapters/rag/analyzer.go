package rag

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	charregexp "github.com/blevesearch/bleve/v2/analysis/char/regexp"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
	"github.com/blevesearch/bleve/v2/analysis/token/stop"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/analysis/tokenmap"
	"github.com/blevesearch/bleve/v2/mapping"

	"github.com/kchat/kchat/adapters/internal/thesaurus"
)

// analyzerName is the body's analyser: bleve's English one (possessives,
// stop words, Porter stemming; "down" is no stop word here) after char
// filters that write every word of a thesaurus group as the group's first
// word, and each compound phrase ("language model") as its word, in
// passages and questions alike. A question's "LLM" and a passage's
// "generator" are then one term, scored as any other: measured against
// bleve's own synonym search and against expanding passages with their
// synonyms in docs/quality.md, "Vocabulary".
const analyzerName = "kchat_en"

// stopWords names the analyser's stop-word list and filter.
const stopWords = "kchat_stop_en"

// addAnalyzer defines analyzerName on m with the given groups.
func addAnalyzer(m *mapping.IndexMappingImpl, groups [][]string) error {
	var filters []string
	add := func(pattern, word string) error {
		name := "thesaurus-" + strconv.Itoa(len(filters))
		filters = append(filters, name)
		return m.AddCustomCharFilter(name, map[string]any{"type": charregexp.Name, "regexp": pattern, "replace": word})
	}
	for _, c := range thesaurus.Compounds() {
		if err := add(c.Pattern, c.Word); err != nil {
			return err
		}
	}
	for _, g := range groups {
		alts := make([]string, len(g))
		for i, w := range g {
			// and its plural or verb forms: the char filter runs before
			// stemming, and "acking" or "synced" are an abbreviation's
			// words too (docs/quality.md, "Round 3").
			alts[i] = regexp.QuoteMeta(w) + "(?:s|ed|ing)?"
		}
		if err := add(`(?i)\b(?:`+strings.Join(alts, "|")+`)\b`, g[0]); err != nil {
			return err
		}
	}
	// English stop words but "down": "Kafka is down" is what an
	// operator asks about.
	words := analysis.NewTokenMap()
	if err := words.LoadBytes(en.EnglishStopWords); err != nil {
		return err
	}
	delete(words, "down")
	tokens := make([]any, 0, len(words))
	for _, w := range slices.Sorted(maps.Keys(words)) {
		tokens = append(tokens, w)
	}
	if err := m.AddCustomTokenMap(stopWords, map[string]any{"type": tokenmap.Name, "tokens": tokens}); err != nil {
		return err
	}
	if err := m.AddCustomTokenFilter(stopWords, map[string]any{"type": stop.Name, "stop_token_map": stopWords}); err != nil {
		return err
	}
	return m.AddCustomAnalyzer(analyzerName, map[string]any{
		"type":          custom.Name,
		"char_filters":  filters,
		"tokenizer":     unicode.Name,
		"token_filters": []string{en.PossessiveName, lowercase.Name, stopWords, porter.Name},
	})
}

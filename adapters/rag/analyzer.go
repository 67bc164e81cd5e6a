package rag

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	charregexp "github.com/blevesearch/bleve/v2/analysis/char/regexp"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"

	"github.com/kchat/kchat/adapters/internal/thesaurus"
)

// analyzerName is the body's analyser: bleve's English one (stop words,
// possessives, Porter stemming) after char filters that write every word
// of a thesaurus group as the group's first word, and each compound phrase
// ("language model") as its word, in passages and questions alike. A
// question's "LLM" and a passage's "generator" are then one term, scored
// as any other: measured against bleve's own synonym search and against
// expanding passages with their synonyms in docs/quality.md,
// "Vocabulary".
const analyzerName = "kchat_en"

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
			alts[i] = regexp.QuoteMeta(w) + "s?" // and its plural
		}
		if err := add(`(?i)\b(?:`+strings.Join(alts, "|")+`)\b`, g[0]); err != nil {
			return err
		}
	}
	return m.AddCustomAnalyzer(analyzerName, map[string]any{
		"type":          custom.Name,
		"char_filters":  filters,
		"tokenizer":     unicode.Name,
		"token_filters": []string{en.PossessiveName, lowercase.Name, en.StopName, porter.Name},
	})
}

// Package thesaurus is the vocabulary the knowledge-base index
// (adapters/rag) and the extractive generator (adapters/llm) share, so a
// question worded differently from the documents ("a local LLM", "the WS
// chat") finds them and is answered from them: groups of words that stand
// for one another, and phrases that stand for one word (docs/quality.md,
// "Vocabulary").
package thesaurus

import (
	"regexp"
	"slices"
)

// General holds the abbreviations and near-synonyms of technical writing:
// they hold in any documentation, so every knowledge base gets them. Each
// group's words stand for one another. Each word stays one word after
// analysis: the index's analyser (bleve's English one) drops a synonym of
// several words.
var General = [][]string{
	{"websocket", "ws"},
	{"documentation", "docs", "doc"},
	{"configuration", "config"},
	{"authentication", "auth"},
	{"environment", "env"},
	{"variable", "var"},
	{"directory", "dir", "folder"},
	{"repository", "repo"},
	{"database", "db"},
	{"message", "msg"},
	{"acknowledge", "ack"},
	{"maximum", "max"},
	{"minimum", "min"},
	{"parameter", "param"},
	{"argument", "arg"},
	{"application", "app"},
	{"information", "info"},
	{"kubernetes", "k8s"},
	{"delete", "remove", "erase", "wipe"},
	{"error", "err"},
	{"connection", "conn"},
	{"request", "req"},
	{"response", "resp"},
	{"specification", "spec"},
	{"implementation", "impl"},
	{"library", "lib"},
	{"asynchronous", "async"},
	{"synchronous", "sync"},
	{"identifier", "id"},
}

// KChat holds kchat's own vocabulary, true of its embedded knowledge base
// (a user who says "LLM" or "model" means one of its generators) but not
// of documents written by others: the index uses it only without
// KCHAT_KB_DIR.
var KChat = [][]string{
	{"llm", "model", "generator"},
	{"knowledge", "kb"},
	{"start", "launch"},
	{"session", "conversation"},
}

// compounds are phrases that stand for one word of a group: the index
// matches words, not phrases, so a question's "language model" is read as
// "llm" (whose group then reaches "model" and "generator").
var compounds = []struct {
	phrase *regexp.Regexp
	word   string
}{
	{regexp.MustCompile(`(?i)\b(?:large\s+)?language[\s-]+models?\b`), "llm"},
	{regexp.MustCompile(`(?i)\bweb[\s-]+sockets?\b`), "websocket"},
}

// Compound returns text with each phrase of several words that stands for
// one word replaced by that word: "plug in a language model" → "plug in a
// llm".
func Compound(text string) string {
	for _, c := range compounds {
		text = c.phrase.ReplaceAllString(text, c.word)
	}
	return text
}

// Map returns the groups as a map from each word to the other words of
// its groups, every word put through norm (the caller's stemmer), so the
// caller looks its own terms up.
func Map(norm func(string) string, groups ...[][]string) map[string][]string {
	m := map[string][]string{}
	for _, gs := range groups {
		for _, g := range gs {
			for _, w := range g {
				key := norm(w)
				for _, o := range g {
					if n := norm(o); n != key && !slices.Contains(m[key], n) {
						m[key] = append(m[key], n)
					}
				}
			}
		}
	}
	return m
}

// Phrase is a compound phrase's pattern (a Go regular expression) and
// the word that stands for it.
type Phrase struct {
	Pattern string
	Word    string
}

// Compounds returns the compound phrases, for an analyser that rewrites
// them.
func Compounds() []Phrase {
	out := make([]Phrase, len(compounds))
	for i, c := range compounds {
		out[i] = Phrase{Pattern: c.phrase.String(), Word: c.word}
	}
	return out
}

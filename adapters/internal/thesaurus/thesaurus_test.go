package thesaurus_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/kchat/kchat/adapters/internal/thesaurus"
)

func TestCompound(t *testing.T) {
	for _, tt := range []struct{ give, want string }{
		{"How do I plug in a language model?", "How do I plug in a llm?"},
		{"Large Language Models and language-model servers", "llm and llm servers"},
		{"the web socket chat", "the websocket chat"},
		{"a model of language", "a model of language"},
	} {
		if got := thesaurus.Compound(tt.give); got != tt.want {
			t.Errorf("Compound(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestMap(t *testing.T) {
	m := thesaurus.Map(strings.ToUpper, [][]string{{"llm", "model", "generator"}}, [][]string{{"ws", "websocket"}, {"model", "schema"}})
	if got, want := m["MODEL"], []string{"LLM", "GENERATOR", "SCHEMA"}; !slices.Equal(got, want) {
		t.Errorf("Map[MODEL] = %v, want %v", got, want)
	}
	if got, want := m["WS"], []string{"WEBSOCKET"}; !slices.Equal(got, want) {
		t.Errorf("Map[WS] = %v, want %v", got, want)
	}
	if _, ok := m["model"]; ok {
		t.Error("keys are not normalised")
	}
}

// Every word of a group must survive analysis as one word: the
// groups are matched word by word.
func TestGroupsAreSingleWords(t *testing.T) {
	for _, g := range slices.Concat(thesaurus.General, thesaurus.KChat) {
		for _, w := range g {
			if strings.ContainsFunc(w, func(r rune) bool { return (r < 'a' || r > 'z') && (r < '0' || r > '9') }) {
				t.Errorf("group %v: %q is not one lowercase word", g, w)
			}
		}
	}
}

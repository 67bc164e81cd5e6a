package domain

import (
	"strings"
	"unicode"
)

// Query is what the retrieve stage looks up in the knowledge base.
type Query struct {
	// Text is the question.
	Text string
	// Context is what the question follows up on (FollowUpContext), or ""
	// for a question that stands on its own. A retriever weighs its words
	// below the question's, so an earlier topic helps a follow-up without
	// drowning what it asks.
	Context string
}

// maxFollowUpChain is how many earlier questions a follow-up may reach
// back through: "and the linter?" after "and the tests?" after "how do I
// build kchat?".
const maxFollowUpChain = 2

// FollowUpContext returns what question follows up on: the conversation's
// last question (history is oldest first), and the one before it while
// each reads as a follow-up too, up to maxFollowUpChain questions, newest
// first. It returns "" when question stands on its own
// (ReadsAsFollowUp) or history holds no question.
func FollowUpContext(question string, history []Turn) string {
	if !ReadsAsFollowUp(question) {
		return ""
	}
	var parts []string
	for i := len(history) - 1; i >= 0 && len(parts) < maxFollowUpChain; i-- {
		t := history[i]
		if t.Role != RoleUser || strings.TrimSpace(t.Text) == "" {
			continue
		}
		parts = append(parts, strings.TrimSpace(t.Text))
		if !ReadsAsFollowUp(t.Text) {
			break
		}
	}
	return strings.Join(parts, "\n")
}

// newTopic opens a question that says it leaves the conversation's topic.
var newTopic = []string{
	"new question", "different topic", "another topic", "another thing", "another question",
	"unrelated", "something else", "separate question", "on another note", "change of topic",
	"changing topic", "switching topic", "other topic",
}

// connectives open a question that continues the one before it.
var connectives = []string{
	"and", "also", "but", "so", "then", "or", "plus", "what about", "how about", "same",
}

// anaphora point back at something the conversation named. "there" and
// "one" are left out: "is there a page…", "in one request" stand alone.
var anaphora = map[string]bool{
	"it": true, "its": true, "it's": true, "they": true, "them": true, "their": true,
	"theirs": true, "that": true, "this": true, "those": true, "these": true, "then": true,
	"he": true, "she": true, "him": true, "her": true, "such": true,
}

// ReadsAsFollowUp reports whether question seems to need the conversation
// to be understood: it opens with a connective ("and…", "what about…")
// or refers back with a pronoun ("it", "them", "that", "then"), and does
// not announce a new topic ("new question: …"). A lexical guess: a
// question whose pronoun points inside itself ("can I read messages
// without consuming them?") reads as a follow-up too, which costs little
// since the earlier question's words weigh less than its own.
func ReadsAsFollowUp(question string) bool {
	q := strings.ToLower(strings.TrimSpace(question))
	for _, p := range newTopic {
		if strings.HasPrefix(q, p) {
			return false
		}
	}
	words := strings.FieldsFunc(q, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' && r != '’'
	})
	if len(words) == 0 {
		return false
	}
	opening := strings.Join(words[:min(2, len(words))], " ")
	for _, c := range connectives {
		if words[0] == c || opening == c {
			return true
		}
	}
	for _, w := range words {
		if anaphora[strings.ReplaceAll(w, "’", "'")] {
			return true
		}
	}
	return false
}

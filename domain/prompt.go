package domain

// Prompt is what the generate stage answers: the (censored) question, the
// session's recent turns and the retrieved passages, numbered from 1 in
// the order given.
type Prompt struct {
	Question string
	History  []Turn
	Passages []Passage
}

package domain

import (
	"strconv"
	"strings"
)

// Prompt is what the generate stage answers: the (censored) question, the
// session's recent turns and the retrieved passages, numbered from 1 in
// the order given.
type Prompt struct {
	Question string
	History  []Turn
	Passages []Passage
}

// Instructions hold a language model to the passages: kchat answers from
// its knowledge base, and a citation must point at a passage the user can
// open. Every generator that talks to a model uses this one text (the
// rendered prompt carries it too), so they cannot drift apart.
const Instructions = "You answer questions using only the numbered passages from the knowledge base given with the question. " +
	"Cite the passages you use as [n], where n is the passage number, right after the statement they support. " +
	"If the passages do not contain the answer, say plainly that the knowledge base does not cover it; do not guess or use outside knowledge. " +
	"Be concise."

// Label names a passage for a reader: "source › title", or whichever of
// the two it has.
func (p Passage) Label() string {
	switch {
	case p.Source != "" && p.Title != "":
		return p.Source + " › " + p.Title
	case p.Source != "":
		return p.Source
	case p.Title != "":
		return p.Title
	default:
		return "unknown source"
	}
}

// RenderPassages lists the passages one a line as "[n] (label) text", or
// says that none were found.
func (p Prompt) RenderPassages() string {
	if len(p.Passages) == 0 {
		return "Passages: none were found.\n"
	}
	var b strings.Builder
	b.WriteString("Passages:\n")
	for i, ps := range p.Passages {
		b.WriteString("[")
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString("] (")
		b.WriteString(ps.Label())
		b.WriteString(") ")
		b.WriteString(strings.TrimSpace(ps.Text))
		b.WriteString("\n")
	}
	return b.String()
}

// RenderQuestion is the passages followed by the question: what a chat
// model reads as the user's last message.
func (p Prompt) RenderQuestion() string {
	return p.RenderPassages() + "\nQuestion: " + strings.TrimSpace(p.Question)
}

// Render is the prompt as one text, for any language model: the
// instructions, the conversation so far, the numbered passages and the
// question.
func (p Prompt) Render() string {
	var b strings.Builder
	b.WriteString(Instructions)
	b.WriteString("\n\n")
	if len(p.History) > 0 {
		b.WriteString("Conversation so far:\n")
		for _, t := range p.History {
			b.WriteString(string(t.Role))
			b.WriteString(": ")
			b.WriteString(t.Text)
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	b.WriteString(p.RenderQuestion())
	b.WriteString("\n")
	return b.String()
}

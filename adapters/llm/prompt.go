package llm

import (
	"strconv"
	"strings"

	"github.com/kchat/kchat/domain"
)

// systemPrompt holds the model to the passages: kchat answers from its
// knowledge base, and a citation must point at a passage the user can open.
const systemPrompt = `You answer questions using only the numbered passages from the knowledge base given with the question. ` +
	`Cite the passages you use as [n], where n is the passage number, right after the statement they support. ` +
	`If the passages do not contain the answer, say plainly that the knowledge base does not cover it; do not guess or use outside knowledge. ` +
	`Be concise.`

// message is one chat message in the order the model reads them.
type message struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// renderMessages turns a prompt into chat messages: the instructions, the
// conversation so far, then the numbered passages with the question.
func renderMessages(p domain.Prompt) []message {
	msgs := make([]message, 0, len(p.History)+2)
	msgs = append(msgs, message{Role: "system", Content: systemPrompt})
	for _, t := range p.History {
		if strings.TrimSpace(t.Text) == "" {
			continue
		}
		role := "user"
		if t.Role == domain.RoleAssistant {
			role = "assistant"
		}
		msgs = append(msgs, message{Role: role, Content: t.Text})
	}
	return append(msgs, message{Role: "user", Content: renderQuestion(p)})
}

// renderQuestion lists the passages as "[n] (source › title) text" and
// then asks the question.
func renderQuestion(p domain.Prompt) string {
	var b strings.Builder
	if len(p.Passages) == 0 {
		b.WriteString("Passages: none were found.\n")
	} else {
		b.WriteString("Passages:\n")
	}
	for i, ps := range p.Passages {
		b.WriteString("[")
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString("] (")
		b.WriteString(passageLabel(ps))
		b.WriteString(") ")
		b.WriteString(strings.TrimSpace(ps.Text))
		b.WriteString("\n")
	}
	b.WriteString("\nQuestion: ")
	b.WriteString(strings.TrimSpace(p.Question))
	return b.String()
}

func passageLabel(ps domain.Passage) string {
	switch {
	case ps.Source != "" && ps.Title != "":
		return ps.Source + " › " + ps.Title
	case ps.Source != "":
		return ps.Source
	case ps.Title != "":
		return ps.Title
	default:
		return "unknown source"
	}
}

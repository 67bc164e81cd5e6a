package llm

import (
	"strings"

	"github.com/kchat/kchat/domain"
)

// message is one chat message in the order the model reads them.
type message struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// renderMessages turns a prompt into chat messages: the instructions
// (domain.Instructions), the conversation so far, then the numbered
// passages with the question.
func renderMessages(p domain.Prompt) []message {
	msgs := make([]message, 0, len(p.History)+2)
	msgs = append(msgs, message{Role: "system", Content: domain.Instructions})
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
	return append(msgs, message{Role: "user", Content: p.RenderQuestion()})
}

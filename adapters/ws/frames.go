package ws

import (
	"time"

	"github.com/kchat/kchat/domain"
)

// Frames of the chat protocol (SPEC §6), client to server.
type clientFrame struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Message string `json:"message,omitempty"`
}

// Frames server to client.
type sessionFrame struct {
	Type      string `json:"type"` // session
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
}

type ackFrame struct {
	Type      string `json:"type"` // ack
	ID        string `json:"id,omitempty"`
	MessageID string `json:"message_id"`
}

type citationFrame struct {
	N       int     `json:"n"`
	Source  string  `json:"source"`
	Title   string  `json:"title,omitempty"`
	Score   float64 `json:"score,omitempty"`
	Snippet string  `json:"snippet,omitempty"`
}

type answerFrame struct {
	Type      string          `json:"type"` // answer
	ReplyTo   string          `json:"reply_to"`
	MessageID string          `json:"message_id"`
	Message   string          `json:"message"`
	Citations []citationFrame `json:"citations"`
	Error     string          `json:"error,omitempty"`
}

type errorFrame struct {
	Type    string `json:"type"` // error
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type turnFrame struct {
	Role      string          `json:"role"`
	MessageID string          `json:"message_id"`
	Text      string          `json:"text"`
	Citations []citationFrame `json:"citations,omitempty"`
	At        time.Time       `json:"at"`
}

type historyFrame struct {
	Type  string      `json:"type"` // history
	Turns []turnFrame `json:"turns"`
}

// Error codes of the protocol.
const (
	codeBadRequest   = "bad_request"
	codeTooLarge     = "too_large"
	codeRateLimited  = "rate_limited"
	codeUnauthorized = "unauthorized"
	codeForbidden    = "forbidden"
	codeUnavailable  = "unavailable"
)

func citations(cs []domain.Citation) []citationFrame {
	out := make([]citationFrame, len(cs))
	for i, c := range cs {
		out[i] = citationFrame(c)
	}
	return out
}

func answerOf(m domain.Message) answerFrame {
	f := answerFrame{Type: "answer", ReplyTo: m.ReplyTo, MessageID: m.MessageID, Message: m.Text, Citations: citations(m.Citations)}
	if e, ok := m.Metadata["error"].(string); ok {
		f.Error = e
	}
	return f
}

func historyOf(turns []domain.Turn) historyFrame {
	f := historyFrame{Type: "history", Turns: make([]turnFrame, len(turns))}
	for i, t := range turns {
		f.Turns[i] = turnFrame{Role: string(t.Role), MessageID: t.MessageID, Text: t.Text, Citations: citations(t.Citations), At: t.At}
	}
	return f
}

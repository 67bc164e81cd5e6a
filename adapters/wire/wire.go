package wire

import (
	"time"

	"github.com/kchat/kchat/domain"
)

// Citation points an answer at the knowledge-base passage that supports it.
type Citation struct {
	N       int     `json:"n" minimum:"1" doc:"Marker number used in the text as [n]"`
	Source  string  `json:"source" doc:"Document the passage comes from"`
	Title   string  `json:"title,omitempty" doc:"Heading of the passage"`
	Score   float64 `json:"score,omitempty" doc:"Retrieval score"`
	Snippet string  `json:"snippet,omitempty" doc:"The cited text"`
}

// CitationsOf returns the wire form of cs: never nil, so a message without
// citations carries "citations":[].
func CitationsOf(cs []domain.Citation) []Citation {
	out := make([]Citation, len(cs))
	for i, c := range cs {
		out[i] = Citation(c)
	}
	return out
}

// DomainCitations returns cs as domain citations; nil when there are none.
func DomainCitations(cs []Citation) []domain.Citation {
	if len(cs) == 0 {
		return nil
	}
	out := make([]domain.Citation, len(cs))
	for i, c := range cs {
		out[i] = domain.Citation(c)
	}
	return out
}

// Turn is one turn of a conversation: as a session store keeps it, and as
// the history routes and frames return it.
type Turn struct {
	Role      string     `json:"role" enum:"user,assistant"`
	MessageID string     `json:"message_id"`
	Text      string     `json:"text"`
	Citations []Citation `json:"citations,omitempty"`
	At        time.Time  `json:"at"`
}

// TurnOf returns the wire form of t.
func TurnOf(t domain.Turn) Turn {
	return Turn{Role: string(t.Role), MessageID: t.MessageID, Text: t.Text, Citations: CitationsOf(t.Citations), At: t.At}
}

// TurnsOf returns the wire form of ts; never nil.
func TurnsOf(ts []domain.Turn) []Turn {
	out := make([]Turn, len(ts))
	for i, t := range ts {
		out[i] = TurnOf(t)
	}
	return out
}

// Domain returns the turn as a domain.Turn.
func (t Turn) Domain() domain.Turn {
	return domain.Turn{Role: domain.Role(t.Role), MessageID: t.MessageID, Text: t.Text, Citations: DomainCitations(t.Citations), At: t.At}
}

// Answer is an answer as the chat routes and frames return it.
type Answer struct {
	MessageID string     `json:"message_id"`
	Message   string     `json:"message"`
	Citations []Citation `json:"citations"`
	Error     string     `json:"error,omitempty" doc:"Set when the answer failed; message then says so"`
}

// AnswerOf returns the wire form of answer message m.
func AnswerOf(m domain.Message) Answer {
	a := Answer{MessageID: m.MessageID, Message: m.Text, Citations: CitationsOf(m.Citations)}
	a.Error, _ = m.Failure()
	return a
}

// Envelope is a message as kchat's topics carry it: the value of every
// record, and the value the consumer service returns.
type Envelope struct {
	V         int            `json:"v" example:"1"`
	MessageID string         `json:"message_id"`
	SessionID string         `json:"session_id"`
	UserID    string         `json:"user_id"`
	Type      string         `json:"type" enum:"query,prompt,answer"`
	Message   string         `json:"message"`
	ReplyTo   string         `json:"reply_to,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	Metadata  map[string]any `json:"metadata"`
	Citations []Citation     `json:"citations"`
	Signature string         `json:"signature,omitempty" doc:"Set by the answerer on the prompts and answers it writes: <key id>.<HMAC-SHA256>, checked by the gateway (docs/security.md)"`
}

// EnvelopeOf returns m in the current envelope version. Metadata and
// citations are never null on the wire.
func EnvelopeOf(m domain.Message) Envelope {
	e := Envelope{
		V: domain.EnvelopeVersion, MessageID: m.MessageID, SessionID: m.SessionID, UserID: m.UserID,
		Type: string(m.Type), Message: m.Text, ReplyTo: m.ReplyTo, CreatedAt: m.CreatedAt.UTC(),
		Metadata: m.Metadata, Citations: CitationsOf(m.Citations), Signature: m.Signature,
	}
	if e.Metadata == nil {
		e.Metadata = map[string]any{}
	}
	return e
}

// Domain returns the envelope as a domain message, unvalidated: readers
// check the version and call Validate, since a record may hold anything.
// Empty metadata comes back nil.
func (e Envelope) Domain() domain.Message {
	m := domain.Message{
		MessageID: e.MessageID, SessionID: e.SessionID, UserID: e.UserID, Type: domain.MessageType(e.Type),
		Text: e.Message, ReplyTo: e.ReplyTo, CreatedAt: e.CreatedAt, Metadata: e.Metadata,
		Citations: DomainCitations(e.Citations), Signature: e.Signature,
	}
	if len(m.Metadata) == 0 {
		m.Metadata = nil
	}
	return m
}

// Delta is the value of a record of the stream topic (domain.Delta), and
// the body of the answer_delta WebSocket frame and the SSE delta event
// (without session, user and signature there).
type Delta struct {
	V         int    `json:"v" example:"1"`
	ReplyTo   string `json:"reply_to"`
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	Attempt   int64  `json:"attempt"`
	Seq       int    `json:"seq"`
	Text      string `json:"text"`
	Signature string `json:"signature,omitempty"`
}

// DeltaOf returns d in its record shape.
func DeltaOf(d domain.Delta) Delta {
	return Delta{V: 1, ReplyTo: d.ReplyTo, SessionID: d.SessionID, UserID: d.UserID, Attempt: d.Attempt, Seq: d.Seq, Text: d.Text, Signature: d.Signature}
}

// Domain returns the delta as a domain.Delta.
func (d Delta) Domain() domain.Delta {
	return domain.Delta{ReplyTo: d.ReplyTo, SessionID: d.SessionID, UserID: d.UserID, Attempt: d.Attempt, Seq: d.Seq, Text: d.Text, Signature: d.Signature}
}

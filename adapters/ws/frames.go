package ws

import (
	"github.com/kchat/kchat/adapters/wire"
	"github.com/kchat/kchat/domain"
)

// Frames of the chat protocol (docs/design.md, "The WebSocket protocol"),
// client to server.
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

type answerFrame struct {
	Type    string `json:"type"` // answer
	ReplyTo string `json:"reply_to"`
	wire.Answer
	trace domain.Trace // not sent: the answer's way here, for its span and hops
}

// answerDeltaFrame is a piece of an answer being generated, before its
// answer frame (docs/design.md, "Streaming answers"): per reply_to, seq 0,
// 1, 2… of one attempt, in order; seq 0 of a greater attempt replaces the
// text shown so far, and the answer frame replaces it all. A client that
// ignores it loses nothing but the wait.
type answerDeltaFrame struct {
	Type    string       `json:"type"` // answer_delta
	ReplyTo string       `json:"reply_to"`
	Attempt int64        `json:"attempt"`
	Seq     int          `json:"seq"`
	Text    string       `json:"text"`
	trace   domain.Trace // not sent: for the first delta's time
}

// questionFrame is a question asked in the session on another socket (or
// with POST /chat), so every socket of the session shows both turns.
type questionFrame struct {
	Type      string `json:"type"` // question
	MessageID string `json:"message_id"`
	Message   string `json:"message"`
}

type errorFrame struct {
	Type    string `json:"type"` // error
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type historyFrame struct {
	Type  string      `json:"type"` // history
	Turns []wire.Turn `json:"turns"`
	// Unknown says the gateway holds no such session: nothing was asked
	// in it yet, or it is gone (expired, or an in-memory store restarted).
	Unknown bool `json:"unknown,omitempty"`
}

// Error codes of the protocol. A missing or bad credential never gets a
// frame: the upgrade is refused with 401 before there is a socket.
const (
	codeBadRequest  = "bad_request"
	codeTooLarge    = "too_large"
	codeRateLimited = "rate_limited"
	codeForbidden   = "forbidden"
	codeUnavailable = "unavailable"
)

func answerOf(m domain.Message) answerFrame {
	return answerFrame{Type: "answer", ReplyTo: m.ReplyTo, Answer: wire.AnswerOf(m), trace: m.Trace}
}

func answerDeltaOf(d domain.Delta) answerDeltaFrame {
	return answerDeltaFrame{Type: "answer_delta", ReplyTo: d.ReplyTo, Attempt: d.Attempt, Seq: d.Seq, Text: d.Text, trace: d.Trace}
}

func historyOf(turns []domain.Turn) historyFrame {
	return historyFrame{Type: "history", Turns: wire.TurnsOf(turns)}
}

package app

import (
	"context"
	"fmt"
	"time"

	"github.com/kchat/kchat/domain"
)

// Chat asks a question and waits for its answer, for clients that hold no
// connection open (POST /chat).
type Chat struct {
	Ask     *Ask
	Answers *Answers
	// Timeout bounds the wait for the answer.
	Timeout time.Duration
}

// ChatInput is one question; an empty SessionID starts a new session.
type ChatInput struct {
	UserID    string
	SessionID string
	Text      string
}

// ChatResult is the question as published and its answer.
type ChatResult struct {
	SessionID string
	Query     domain.Message
	Answer    domain.Message
}

// AnswerTimeoutError says the question was published but its answer did
// not come in time (or the caller stopped waiting): it still arrives in
// the session's history and on its live connections.
type AnswerTimeoutError struct {
	QueryID string
	// Timeout is how long the wait was; zero when the caller gave up.
	Timeout time.Duration
}

func (e *AnswerTimeoutError) Error() string {
	if e.Timeout == 0 {
		return fmt.Sprintf("stopped waiting for the answer to %s", e.QueryID)
	}
	return fmt.Sprintf("no answer to %s within %s", e.QueryID, e.Timeout)
}

// Execute publishes the question and waits for its answer. Errors: those
// of Ask, and *AnswerTimeoutError.
func (uc *Chat) Execute(ctx context.Context, in ChatInput) (ChatResult, error) {
	s, err := startChat(ctx, uc.Ask, uc.Answers, uc.Timeout, in, false)
	if err != nil {
		return ChatResult{}, err
	}
	defer s.Close()
	ev, err := s.Next(ctx) // without deltas, the answer is the only event
	if err != nil {
		return ChatResult{}, err
	}
	return ChatResult{SessionID: s.SessionID, Query: s.Query, Answer: ev.Answer}, nil
}

// startChat publishes the question of in, expecting its answer (and its
// deltas, with deltas) from before it is published.
func startChat(ctx context.Context, ask *Ask, answers *Answers, timeout time.Duration, in ChatInput, deltas bool) (*ChatStream, error) {
	session := in.SessionID
	if session == "" {
		session = domain.NewMessageID()
	}
	id := domain.NewMessageID()
	w, done := answers.expect(session, id, in.UserID, deltas) // before publishing: the answer cannot slip past
	q, err := ask.Execute(ctx, AskInput{UserID: in.UserID, SessionID: session, Text: in.Text, MessageID: id})
	if err != nil {
		done()
		return nil, err
	}
	return &ChatStream{SessionID: session, Query: q, waiter: w, done: done, timeout: timeout, timer: time.NewTimer(timeout)}, nil
}

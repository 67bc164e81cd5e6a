package app

import (
	"context"
	"fmt"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Ask puts a user's question into the pipeline: it counts the question
// against the user's limit, checks the session belongs to the user
// (creating it for them when new) and publishes the query. Every entry
// point that takes questions (the WebSocket, POST /chat) goes through it,
// so each obeys the same per-user limit.
type Ask struct {
	Sessions  ports.SessionStore
	Publisher ports.QueryPublisher
	// Limiter bounds the questions of each user; nil means no limit.
	Limiter ports.Limiter
	// Answers, when set, hears of every question published, and tells the
	// session's open connections in this process (OpenSession's
	// Listener.Question).
	Answers *Answers
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// AskInput is one question.
type AskInput struct {
	UserID    string
	SessionID string
	Text      string
	// MessageID is optional; a UUIDv7 is generated when empty.
	MessageID string
}

// Execute returns the published query. Errors: domain.ErrRateLimited when
// the user asks too often (checked first, so a flood of bad questions
// counts too), *domain.ValidationError for bad input, domain.ErrForbidden
// when the session is someone else's, domain.ErrUnavailable when the
// session store, the limiter or Kafka does not answer.
func (uc *Ask) Execute(ctx context.Context, in AskInput) (domain.Message, error) {
	if err := uc.allow(ctx, in.UserID); err != nil {
		return domain.Message{}, err
	}
	q := domain.Message{
		MessageID: in.MessageID, SessionID: in.SessionID, UserID: in.UserID,
		Type: domain.TypeQuery, Text: in.Text, CreatedAt: now(uc.Now),
	}
	if q.MessageID == "" {
		q.MessageID = domain.NewMessageID()
	}
	if err := q.Validate(); err != nil {
		return domain.Message{}, err
	}
	if err := ownSession(ctx, uc.Sessions, in.SessionID, in.UserID); err != nil {
		return domain.Message{}, err
	}
	if uc.Answers != nil {
		// The answer is to come where this process reads.
		q.Reply = uc.Answers.Feed.Reply(q.SessionID)
	}
	if err := uc.Publisher.PublishQuery(ctx, q); err != nil {
		return domain.Message{}, fmt.Errorf("publish query %s: %w", q.MessageID, err)
	}
	if uc.Answers != nil {
		uc.Answers.announce(q)
	}
	return q, nil
}

func (uc *Ask) allow(ctx context.Context, user string) error {
	if uc.Limiter == nil {
		return nil
	}
	ok, err := uc.Limiter.Allow(ctx, user)
	switch {
	case err != nil:
		return fmt.Errorf("rate limit of user %s: %w", user, err)
	case !ok:
		return fmt.Errorf("user %s: %w", user, domain.ErrRateLimited)
	}
	return nil
}

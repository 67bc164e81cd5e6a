package app

import (
	"context"
	"fmt"
	"time"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// Ask puts a user's question into the pipeline: it checks the session
// belongs to the user (creating it for them when new) and publishes the
// query.
type Ask struct {
	Sessions  ports.SessionStore
	Publisher ports.QueryPublisher
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

// Execute returns the published query. Errors: *domain.ValidationError for
// bad input, domain.ErrForbidden when the session is someone else's,
// domain.ErrUnavailable when the session store or Kafka does not answer.
func (uc *Ask) Execute(ctx context.Context, in AskInput) (domain.Message, error) {
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
	if err := OwnSession(ctx, uc.Sessions, in.SessionID, in.UserID); err != nil {
		return domain.Message{}, err
	}
	if err := uc.Publisher.PublishQuery(ctx, q); err != nil {
		return domain.Message{}, fmt.Errorf("publish query %s: %w", q.MessageID, err)
	}
	return q, nil
}

// OwnSession opens sessionID for userID: it creates it for them when new,
// and returns domain.ErrForbidden when another user owns it.
func OwnSession(ctx context.Context, sessions ports.SessionStore, sessionID, userID string) error {
	owner, err := sessions.Open(ctx, sessionID, userID)
	if err != nil {
		return fmt.Errorf("session %s: %w", sessionID, err)
	}
	if owner != userID {
		return fmt.Errorf("session %s: %w", sessionID, domain.ErrForbidden)
	}
	return nil
}

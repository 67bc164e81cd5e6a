package app

import (
	"context"
	"fmt"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// SessionHistory reads and deletes a user's conversations.
type SessionHistory struct {
	Sessions ports.SessionStore
	// Limit is the most turns returned.
	Limit int
}

// Turns returns the session's turns after the turn with message id after
// (all of them when after is empty or not found), oldest first. Errors:
// domain.ErrForbidden for someone else's session, domain.ErrUnavailable.
func (uc *SessionHistory) Turns(ctx context.Context, userID, sessionID, after string) ([]domain.Turn, error) {
	if err := OwnSession(ctx, uc.Sessions, sessionID, userID); err != nil {
		return nil, err
	}
	turns, err := uc.Sessions.Recent(ctx, sessionID, max(uc.Limit, 1))
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", sessionID, err)
	}
	if after != "" {
		for i, t := range turns {
			if t.MessageID == after {
				return turns[i+1:], nil
			}
		}
	}
	return turns, nil
}

// Delete removes the user's session.
func (uc *SessionHistory) Delete(ctx context.Context, userID, sessionID string) error {
	if err := OwnSession(ctx, uc.Sessions, sessionID, userID); err != nil {
		return err
	}
	if err := uc.Sessions.Delete(ctx, sessionID); err != nil {
		return fmt.Errorf("delete session %s: %w", sessionID, err)
	}
	return nil
}

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
	// Answers, when set, closes this process's connections of a deleted
	// session.
	Answers *Answers
	// Limit is the most turns returned.
	Limit int
}

// Turns returns the session's turns after the turn with message id after
// (all of them when after is empty or not found), oldest first. Errors:
// domain.ErrNotFound for a session that does not exist (reading never
// creates one), domain.ErrForbidden for someone else's,
// *domain.ValidationError for a malformed id, domain.ErrUnavailable.
func (uc *SessionHistory) Turns(ctx context.Context, userID, sessionID, after string) ([]domain.Turn, error) {
	if err := checkOwner(ctx, uc.Sessions, sessionID, userID); err != nil {
		return nil, err
	}
	return turnsAfter(ctx, uc.Sessions, sessionID, after, uc.Limit)
}

// Delete removes the user's session. Errors as Turns.
func (uc *SessionHistory) Delete(ctx context.Context, userID, sessionID string) error {
	if err := checkOwner(ctx, uc.Sessions, sessionID, userID); err != nil {
		return err
	}
	if err := uc.Sessions.Delete(ctx, sessionID); err != nil {
		return fmt.Errorf("delete session %s: %w", sessionID, err)
	}
	if uc.Answers != nil {
		uc.Answers.end(sessionID)
	}
	return nil
}

// turnsAfter returns up to limit recent turns of a session that come after
// the turn with message id after (all of them when after is empty or not
// among them).
func turnsAfter(ctx context.Context, sessions ports.SessionStore, sessionID, after string, limit int) ([]domain.Turn, error) {
	_, turns, err := recentAfter(ctx, sessions, sessionID, after, limit)
	return turns, err
}

// recentAfter is turnsAfter with the recent turns it picked them from.
func recentAfter(ctx context.Context, sessions ports.SessionStore, sessionID, after string, limit int) (recent, turns []domain.Turn, err error) {
	recent, err = sessions.Recent(ctx, sessionID, max(limit, 1))
	if err != nil {
		return nil, nil, fmt.Errorf("session %s: %w", sessionID, err)
	}
	if after != "" {
		for i, t := range recent {
			if t.MessageID == after {
				return recent, recent[i+1:], nil
			}
		}
	}
	return recent, recent, nil
}

package app

import (
	"context"
	"fmt"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// ownSession opens sessionID for userID: it creates it for them when new,
// and returns domain.ErrForbidden when another user owns it. It is the one
// ownership check every chat use case shares.
func ownSession(ctx context.Context, sessions ports.SessionStore, sessionID, userID string) error {
	owner, err := sessions.Open(ctx, sessionID, userID)
	if err != nil {
		return fmt.Errorf("session %s: %w", sessionID, err)
	}
	if owner != userID {
		return fmt.Errorf("session %s: %w", sessionID, domain.ErrForbidden)
	}
	return nil
}

// checkOwner checks an existing session belongs to userID without creating
// it: domain.ErrNotFound when there is no such session (nobody can squat
// an id by reading it), domain.ErrForbidden when another user owns it, a
// *domain.ValidationError for a malformed id.
func checkOwner(ctx context.Context, sessions ports.SessionStore, sessionID, userID string) error {
	if err := domain.ValidateID("session_id", sessionID); err != nil {
		return err
	}
	owner, err := sessions.Owner(ctx, sessionID)
	if err != nil {
		return fmt.Errorf("session %s: %w", sessionID, err)
	}
	if owner != userID {
		return fmt.Errorf("session %s: %w", sessionID, domain.ErrForbidden)
	}
	return nil
}

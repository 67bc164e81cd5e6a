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

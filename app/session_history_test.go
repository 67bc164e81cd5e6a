package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// Reading or deleting a session that does not exist is 404, and creates
// nothing: nobody can squat an id by reading it before its owner asks.
func TestSessionHistoryOfAnUnknownSession(t *testing.T) {
	mem := newSessions()
	uc := &app.SessionHistory{Sessions: mem, Limit: 10}
	ctx := context.Background()
	if _, err := uc.Turns(ctx, "mallory", "future-session", ""); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("history of an unknown session: %v, want domain.ErrNotFound", err)
	}
	if err := uc.Delete(ctx, "mallory", "future-session"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("delete of an unknown session: %v, want domain.ErrNotFound", err)
	}
	if owner, err := mem.Open(ctx, "future-session", "alice"); err != nil || owner != "alice" {
		t.Fatalf("the id was squatted: alice's first use gives owner %q, %v", owner, err)
	}
	if _, err := uc.Turns(ctx, "mallory", "future-session", ""); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("history of alice's session for mallory: %v, want domain.ErrForbidden", err)
	}
	if turns, err := uc.Turns(ctx, "alice", "future-session", ""); err != nil || len(turns) != 0 {
		t.Fatalf("alice's own history: %v, %v", turns, err)
	}
	if _, err := uc.Turns(ctx, "alice", "bad\x00id", ""); !errors.As(err, new(*domain.ValidationError)) {
		t.Fatalf("a control character in the id: %v, want a validation error", err)
	}
}

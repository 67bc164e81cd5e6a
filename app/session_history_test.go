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

// Deleting a session ends its connections on this process: they are told
// (the WebSocket closes), and hear no answer of that id afterwards, even
// one for the user who claims it next.
func TestDeleteEndsTheSessionsConnections(t *testing.T) {
	feed := newHandFeed()
	answers := runAnswers(t, feed)
	mem := newSessions()
	seed(t, mem, "s1", "alice")
	sess, err := (&app.OpenSession{Sessions: mem, Answers: answers, HistoryLimit: 10}).Execute(context.Background(), app.OpenSessionInput{UserID: "alice", SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	ended := make(chan struct{})
	l := rec.listener()
	l.Ended = func() { close(ended) }
	defer sess.Listen(context.Background(), "", l)()

	uc := &app.SessionHistory{Sessions: mem, Answers: answers, Limit: 10}
	if err := uc.Delete(context.Background(), "alice", "s1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("the connection was not told its session was deleted")
	}
	feed.Answer(answer("s1", "after"))
	if got := rec.got(); got != "history:" {
		t.Fatalf("after the delete the connection got %q", got)
	}
}

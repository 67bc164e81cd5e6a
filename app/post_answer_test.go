package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// The external generator's path: a worker's answer posted to the answerer
// (PostAnswer) reaches the asker; an answer posted to the producer, which
// does not sign, does not, though it was published first.
func TestExternalWorkerAnswerReachesTheAsker(t *testing.T) {
	broker := memory.NewBroker("")
	store := newSessions()
	key := mustKey(t, ourSecret)
	feed := &subscribed{AnswerFeed: memory.NewAnswerFeed(broker), up: make(chan struct{})}
	router := &app.Answers{Feed: feed, Key: key, Sessions: store}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = router.Run(ctx) }()
	<-feed.up

	asked(t, store, "s1", "alice", "q1")
	var mu sync.Mutex
	var got []domain.Message
	arrived := make(chan struct{}, 10)
	stop := router.Subscribe("s1", func(m domain.Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		arrived <- struct{}{}
	}, nil)
	defer stop()

	producer := &app.SubmitMessage{Publisher: broker}
	if _, err := producer.Execute(ctx, app.SubmitMessageInput{SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, ReplyTo: "q1", Message: "forged through the producer"}); err != nil {
		t.Fatal(err)
	}
	post := &app.PostAnswer{Sessions: store, Publisher: broker, Key: key}
	cites := []domain.Citation{{N: 1, Source: "running.md", Snippet: "make run"}}
	res, err := post.Execute(ctx, app.PostAnswerInput{SessionID: "s1", ReplyTo: "q1", Text: "Run make run [1].", Citations: cites})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no answer reached the asker")
	}
	mu.Lock()
	a := got[0]
	mu.Unlock()
	if len(got) != 1 || a.Text != "Run make run [1]." || a.UserID != "alice" || a.MessageID != domain.DerivedID("q1", "answer") || len(a.Citations) != 1 {
		t.Fatalf("the asker got %+v, want only the worker's answer, to alice", got)
	}
	if err := key.Verify(res.Answer); err != nil {
		t.Fatalf("the published answer does not verify: %v", err)
	}
	turn, err := store.Turn(ctx, "s1", a.MessageID)
	if err != nil || turn.Role != domain.RoleAssistant || turn.Text != a.Text {
		t.Fatalf("the session records %+v, %v; want the answer", turn, err)
	}
}

// subscribed tells when the router has subscribed to the feed.
type subscribed struct {
	ports.AnswerFeed
	up chan struct{}
}

func (f *subscribed) Subscribe(ctx context.Context, fn func(domain.Message)) error {
	defer close(f.up)
	return f.AnswerFeed.Subscribe(ctx, fn)
}

// A worker may answer a question its session records and has not
// answered, once; posting the same answer again is a retry, another one a
// conflict.
func TestPostAnswerRefuses(t *testing.T) {
	store := newSessions()
	broker := memory.NewBroker("")
	post := &app.PostAnswer{Sessions: store, Publisher: broker, Key: mustKey(t, ourSecret)}
	ctx := context.Background()
	asked(t, store, "s1", "alice", "q1")
	asked(t, store, "s2", "bob", "q2")
	in := func(session, replyTo, text string) app.PostAnswerInput {
		return app.PostAnswerInput{SessionID: session, ReplyTo: replyTo, Text: text}
	}
	if _, err := post.Execute(ctx, in("s1", "q1", "first")); err != nil {
		t.Fatal(err)
	}
	answerID := domain.DerivedID("q1", "answer")
	tests := []struct {
		name string
		give app.PostAnswerInput
		want error // nil: published
	}{
		{"the same answer again", in("s1", "q1", "first"), nil},
		{"another answer", in("s1", "q1", "second"), app.ErrAnswered},
		{"a question of another session", in("s1", "q2", "x"), domain.ErrNotFound},
		{"an unknown session", in("nope", "q1", "x"), domain.ErrNotFound},
		{"an unknown question", in("s1", "q-nope", "x"), domain.ErrNotFound},
		{"an answer, not a question", in("s1", answerID, "x"), domain.ErrNotFound},
		{"no reply_to", in("s1", "", "x"), &domain.ValidationError{}},
		{"no text", in("s2", "q2", ""), &domain.ValidationError{}},
	}
	for _, tt := range tests {
		_, err := post.Execute(ctx, tt.give)
		var verr *domain.ValidationError
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: %v, want it published", tt.name, err)
		case errors.As(tt.want, &verr):
			if !errors.As(err, &verr) {
				t.Errorf("%s: %v, want a validation error", tt.name, err)
			}
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if n := len(broker.Messages("answer")[partitionOf(t, broker, "s1")]); n != 2 {
		t.Errorf("%d answers published in s1's partition, want 2 (the answer and its retry)", n)
	}

	res, err := post.Execute(ctx, app.PostAnswerInput{SessionID: "s2", ReplyTo: "q2", Text: "Sorry, no.", Failure: "model down"})
	if err != nil {
		t.Fatal(err)
	}
	if reason, failed := res.Answer.Failure(); !failed || reason != "model down" || res.Answer.UserID != "bob" {
		t.Fatalf("a failed answer reads back %q, %v for %s", reason, failed, res.Answer.UserID)
	}
}

// partitionOf finds the partition of session's messages on the answer topic.
func partitionOf(t *testing.T, b *memory.Broker, session string) int {
	t.Helper()
	for p, msgs := range b.Messages("answer") {
		for _, m := range msgs {
			if m.SessionID == session {
				return p
			}
		}
	}
	t.Fatalf("no answer of %s published", session)
	return -1
}

package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/adapters/ratelimit"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// handFed is a feed the test drives: send hands a value to every
// subscriber, as a Kafka feed would once it is read; up is closed once the
// first subscribed.
type handFed[T any] struct {
	mu   sync.Mutex
	subs []func(T)
	up   chan struct{}
}

func (f *handFed[T]) Subscribe(_ context.Context, fn func(T)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, fn)
	if len(f.subs) == 1 {
		close(f.up)
	}
	return nil
}

func (f *handFed[T]) send(v T) {
	f.mu.Lock()
	subs := append([]func(T){}, f.subs...)
	f.mu.Unlock()
	for _, fn := range subs {
		fn(v)
	}
}

// handFeed is an answer feed the test drives: Answer hands an answer to
// every subscriber, as the Kafka feed would once it is committed.
type handFeed struct{ handFed[domain.Message] }

func newHandFeed() *handFeed { return &handFeed{handFed[domain.Message]{up: make(chan struct{})}} }

func (f *handFeed) Answer(m domain.Message) { f.send(m) }

// Reply is unset and Widen a no-op: the test's feed reads every answer.
func (f *handFeed) Reply(string) domain.Reply { return domain.Reply{} }

func (f *handFeed) Widen(context.Context) (func(), error) { return func() {}, nil }

// runAnswers runs the router on f until the test ends.
func runAnswers(t *testing.T, f *handFeed) *app.Answers {
	t.Helper()
	a := &app.Answers{Feed: f}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Answers.Run: %v", err)
		}
	})
	<-f.up
	return a
}

// answering publishes queries and, when reply is set, answers each one
// through the feed as the pipeline would.
type answering struct {
	feed  *handFeed
	reply func(q domain.Message) (domain.Message, bool)
	mu    sync.Mutex
	got   []domain.Message
}

func (p *answering) PublishQuery(_ context.Context, q domain.Message) error {
	p.mu.Lock()
	p.got = append(p.got, q)
	p.mu.Unlock()
	if p.reply != nil {
		if a, ok := p.reply(q); ok {
			go p.feed.Answer(a)
		}
	}
	return nil
}

func answerTo(q domain.Message, text string) domain.Message {
	return domain.Message{
		MessageID: domain.DerivedID(q.MessageID, "answer"), SessionID: q.SessionID, UserID: q.UserID,
		Type: domain.TypeAnswer, Text: text, ReplyTo: q.MessageID,
	}
}

func newSessions() *memory.Sessions {
	return memory.NewSessions(memory.SessionsConfig{MaxTurns: 50, TTL: time.Hour})
}

func TestChatWaitsForItsOwnAnswer(t *testing.T) {
	feed := newHandFeed()
	answers := runAnswers(t, feed)
	pub := &answering{feed: feed}
	pub.reply = func(q domain.Message) (domain.Message, bool) {
		// Another question's answer first, in the same session: it must
		// not be taken for this one.
		feed.Answer(domain.Message{MessageID: "other", SessionID: q.SessionID, Type: domain.TypeAnswer, Text: "not yours", ReplyTo: "someone-else"})
		return answerTo(q, "yours"), true
	}
	uc := &app.Chat{Ask: &app.Ask{Sessions: newSessions(), Publisher: pub}, Answers: answers, Timeout: 5 * time.Second}
	res, err := uc.Execute(context.Background(), app.ChatInput{UserID: "alice", Text: "hello?"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer.Text != "yours" || res.Answer.ReplyTo != res.Query.MessageID || res.SessionID == "" || res.Query.SessionID != res.SessionID {
		t.Fatalf("result %+v", res)
	}
}

func TestChatTimesOutWithTheQueryID(t *testing.T) {
	answers := runAnswers(t, newHandFeed())
	pub := &answering{}
	uc := &app.Chat{Ask: &app.Ask{Sessions: newSessions(), Publisher: pub}, Answers: answers, Timeout: 50 * time.Millisecond}
	_, err := uc.Execute(context.Background(), app.ChatInput{UserID: "alice", SessionID: "s1", Text: "anyone?"})
	var late *app.AnswerTimeoutError
	if !errors.As(err, &late) || late.Timeout != 50*time.Millisecond {
		t.Fatalf("got %v, want an AnswerTimeoutError after 50ms", err)
	}
	if len(pub.got) != 1 || late.QueryID != pub.got[0].MessageID {
		t.Fatalf("timeout names %q, the published query is %+v", late.QueryID, pub.got)
	}
}

// The per-user limit holds on POST /chat as on the WebSocket: Chat goes
// through Ask.
func TestChatObeysTheUserLimit(t *testing.T) {
	answers := runAnswers(t, newHandFeed())
	pub := &answering{}
	limiter := ratelimit.New(ratelimit.Config{Rate: 0.001, Burst: 1})
	uc := &app.Chat{Ask: &app.Ask{Sessions: newSessions(), Publisher: pub, Limiter: limiter}, Answers: answers, Timeout: 10 * time.Millisecond}
	_, err := uc.Execute(context.Background(), app.ChatInput{UserID: "alice", Text: "one"})
	if !errors.As(err, new(*app.AnswerTimeoutError)) {
		t.Fatalf("first question: %v, want it published (then a timeout)", err)
	}
	if _, err := uc.Execute(context.Background(), app.ChatInput{UserID: "alice", Text: "two"}); !errors.Is(err, domain.ErrRateLimited) {
		t.Fatalf("second question: %v, want domain.ErrRateLimited", err)
	}
	if len(pub.got) != 1 {
		t.Fatalf("%d questions published, want 1: a limited one must not reach Kafka", len(pub.got))
	}
}

// failingLimiter is a limiter whose store does not answer.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string) (bool, error) {
	return false, domain.ErrUnavailable
}

var _ ports.Limiter = failingLimiter{}

// Ask counts a question against the limit before anything else, and a
// limiter that does not answer refuses the question (limits fail closed).
func TestAskLimitsFirst(t *testing.T) {
	pub := &answering{}
	sessions := newSessions()
	limiter := ratelimit.New(ratelimit.Config{Rate: 0.001, Burst: 2})
	uc := &app.Ask{Sessions: sessions, Publisher: pub, Limiter: limiter}
	ctx := context.Background()
	// Two invalid questions use up the burst: a flood of bad frames counts.
	for range 2 {
		if _, err := uc.Execute(ctx, app.AskInput{UserID: "bob", SessionID: "s", Text: ""}); !errors.As(err, new(*domain.ValidationError)) {
			t.Fatalf("empty question: %v, want a validation error", err)
		}
	}
	if _, err := uc.Execute(ctx, app.AskInput{UserID: "bob", SessionID: "s", Text: "fine"}); !errors.Is(err, domain.ErrRateLimited) {
		t.Fatalf("third question: %v, want domain.ErrRateLimited", err)
	}

	uc.Limiter = failingLimiter{}
	if _, err := uc.Execute(ctx, app.AskInput{UserID: "carol", SessionID: "s2", Text: "hi"}); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("with the limiter down: %v, want domain.ErrUnavailable", err)
	}
	if len(pub.got) != 0 {
		t.Fatalf("%d questions published, want none", len(pub.got))
	}
}

func TestAskRefusesAnotherUsersSession(t *testing.T) {
	sessions := newSessions()
	if _, err := sessions.Open(context.Background(), "s", "alice"); err != nil {
		t.Fatal(err)
	}
	pub := &answering{}
	uc := &app.Ask{Sessions: sessions, Publisher: pub}
	if _, err := uc.Execute(context.Background(), app.AskInput{UserID: "mallory", SessionID: "s", Text: "hi"}); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("got %v, want domain.ErrForbidden", err)
	}
	if len(pub.got) != 0 {
		t.Fatal("a question in someone else's session was published")
	}
}

package app_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// gatedStore holds Recent until the test opens the gate, so the test can
// commit answers inside the window between subscribing and reading the
// history: the race a resume must survive.
type gatedStore struct {
	ports.SessionStore
	reading chan struct{} // closed when Recent starts
	gate    chan struct{} // Recent waits for it
	fail    error
}

func (s *gatedStore) Recent(ctx context.Context, id string, limit int) ([]domain.Turn, error) {
	close(s.reading)
	<-s.gate
	if s.fail != nil {
		return nil, s.fail
	}
	return s.SessionStore.Recent(ctx, id, limit)
}

// recorder is a listener that records what it gets, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
	err    error
}

func (r *recorder) listener() app.Listener {
	return app.Listener{
		History: func(turns []domain.Turn, err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			ids := make([]string, len(turns))
			for i, t := range turns {
				ids[i] = t.MessageID
			}
			r.events, r.err = append(r.events, "history:"+strings.Join(ids, ",")), err
		},
		Answer: func(m domain.Message) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, "answer:"+m.MessageID)
		},
	}
}

func (r *recorder) got() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, " ")
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
	}
}

// answer is alice's answer id in session.
func answer(session, id string) domain.Message {
	return domain.Message{MessageID: id, SessionID: session, UserID: "alice", Type: domain.TypeAnswer, Text: id, ReplyTo: "q-" + id}
}

func seed(t *testing.T, s ports.SessionStore, session, user string, ids ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Open(ctx, session, user); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := s.Append(ctx, session, domain.Turn{Role: domain.RoleAssistant, MessageID: id, Text: id}); err != nil {
			t.Fatal(err)
		}
	}
}

// An answer committed while the history is read is handed over once:
// inside the history if it made it there, else live after the history;
// nothing before the history, nothing twice.
func TestResumeWithoutGapOrDuplicate(t *testing.T) {
	feed := newHandFeed()
	answers := runAnswers(t, feed)
	mem := newSessions()
	seed(t, mem, "s1", "alice", "a1")
	store := &gatedStore{SessionStore: mem, reading: make(chan struct{}), gate: make(chan struct{})}
	uc := &app.OpenSession{Sessions: store, Answers: answers, HistoryLimit: 100}
	sess, err := uc.Execute(context.Background(), app.OpenSessionInput{UserID: "alice", SessionID: "s1"})
	if err != nil || !sess.Resumed || sess.ID != "s1" {
		t.Fatalf("Execute = %+v, %v", sess, err)
	}
	var rec recorder
	listened := make(chan func())
	go func() { listened <- sess.Listen(context.Background(), "", rec.listener()) }()

	<-store.reading // subscribed, history being read
	// a2 is committed and recorded in the session before the read ends;
	// a3 is committed but reaches the store only later.
	if err := mem.Append(context.Background(), "s1", domain.Turn{Role: domain.RoleAssistant, MessageID: "a2", Text: "a2"}); err != nil {
		t.Fatal(err)
	}
	feed.Answer(answer("s1", "a2"))
	feed.Answer(answer("s1", "a3"))
	feed.Answer(answer("s1", "a3")) // the feed repeats itself: still once
	if got := rec.got(); got != "" {
		t.Fatalf("before the history was handed over the client got %q", got)
	}
	close(store.gate)
	stop := <-listened
	defer stop()
	feed.Answer(answer("s1", "a4"))
	feed.Answer(answer("s1", "a2")) // already in the history
	eventually(t, "a4 delivered", func() bool { return strings.HasSuffix(rec.got(), "answer:a4") })
	if want := "history:a1,a2 answer:a3 answer:a4"; rec.got() != want {
		t.Fatalf("the client got %q, want %q", rec.got(), want)
	}
}

// A history that cannot be read is reported, and live answers still flow.
func TestResumeWhenTheHistoryFails(t *testing.T) {
	feed := newHandFeed()
	answers := runAnswers(t, feed)
	mem := newSessions()
	seed(t, mem, "s1", "alice")
	store := &gatedStore{SessionStore: mem, reading: make(chan struct{}), gate: make(chan struct{}), fail: domain.ErrUnavailable}
	close(store.gate)
	uc := &app.OpenSession{Sessions: store, Answers: answers, HistoryLimit: 100}
	sess, err := uc.Execute(context.Background(), app.OpenSessionInput{UserID: "alice", SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	stop := sess.Listen(context.Background(), "", rec.listener())
	defer stop()
	if !errors.Is(rec.err, domain.ErrUnavailable) {
		t.Fatalf("history error %v, want domain.ErrUnavailable", rec.err)
	}
	feed.Answer(answer("s1", "a1"))
	if got := rec.got(); got != "history: answer:a1" {
		t.Fatalf("got %q", got)
	}
}

// A new session gets no history and hears its answers until stop, and
// another session's answers never. It is not stored until its first
// question: a connection that asks nothing leaves nothing behind.
func TestNewSessionListens(t *testing.T) {
	feed := newHandFeed()
	answers := runAnswers(t, feed)
	mem := newSessions()
	uc := &app.OpenSession{Sessions: mem, Answers: answers, HistoryLimit: 100}
	sess, err := uc.Execute(context.Background(), app.OpenSessionInput{UserID: "alice"})
	if err != nil || sess.Resumed || sess.ID == "" {
		t.Fatalf("Execute = %+v, %v", sess, err)
	}
	if _, err := mem.Owner(context.Background(), sess.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("a new session was stored on connect: Owner = %v, want ErrNotFound", err)
	}
	var rec recorder
	stop := sess.Listen(context.Background(), "", rec.listener())
	feed.Answer(answer(sess.ID, "a1"))
	feed.Answer(answer("another-session", "x"))
	stop()
	stop() // twice is fine
	feed.Answer(answer(sess.ID, "a2"))
	if got := rec.got(); got != "answer:a1" {
		t.Fatalf("got %q, want only a1", got)
	}

	// The first question stores it, as the user's.
	ask := &app.Ask{Sessions: mem, Publisher: &answering{}}
	if _, err := ask.Execute(context.Background(), app.AskInput{UserID: "alice", SessionID: sess.ID, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if owner, err := mem.Owner(context.Background(), sess.ID); err != nil || owner != "alice" {
		t.Fatalf("after the first question: owner %q, %v; want alice", owner, err)
	}
}

// A connection hears only its user's answers: once a session id is deleted
// and claimed by someone else, their answers do not reach the first
// owner's open connection (on any gateway).
func TestListenHearsOnlyItsUser(t *testing.T) {
	feed := newHandFeed()
	answers := runAnswers(t, feed)
	mem := newSessions()
	seed(t, mem, "s1", "alice")
	uc := &app.OpenSession{Sessions: mem, Answers: answers, HistoryLimit: 100}
	sess, err := uc.Execute(context.Background(), app.OpenSessionInput{UserID: "alice", SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	stop := sess.Listen(context.Background(), "", rec.listener())
	defer stop()
	mallorys := answer("s1", "m1")
	mallorys.UserID = "mallory"
	feed.Answer(mallorys)
	feed.Answer(answer("s1", "a1"))
	if got := rec.got(); got != "history: answer:a1" {
		t.Fatalf("got %q, want alice's answer only", got)
	}
}

// Resuming a session that is not stored (nothing asked in it yet, or lost)
// is not refused; it replays nothing and says the session is unknown.
func TestResumeAnUnstoredSession(t *testing.T) {
	answers := runAnswers(t, newHandFeed())
	mem := newSessions()
	uc := &app.OpenSession{Sessions: mem, Answers: answers, HistoryLimit: 100}
	sess, err := uc.Execute(context.Background(), app.OpenSessionInput{UserID: "alice", SessionID: "never-asked"})
	if err != nil || !sess.Resumed {
		t.Fatalf("Execute = %+v, %v", sess, err)
	}
	var rec recorder
	defer sess.Listen(context.Background(), "", rec.listener())()
	if rec.got() != "history:" || !errors.Is(rec.err, domain.ErrNotFound) {
		t.Fatalf("got %q, %v; want an empty history and domain.ErrNotFound (the client tells whether it lost anything)", rec.got(), rec.err)
	}
	if _, err := mem.Owner(context.Background(), "never-asked"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatal("resuming stored the session")
	}
}

func TestOpenSessionRefuses(t *testing.T) {
	mem := newSessions()
	seed(t, mem, "s1", "alice")
	uc := &app.OpenSession{Sessions: mem, Answers: &app.Answers{}, HistoryLimit: 100}
	ctx := context.Background()
	if _, err := uc.Execute(ctx, app.OpenSessionInput{UserID: "mallory", SessionID: "s1"}); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("someone else's session: %v, want domain.ErrForbidden", err)
	}
	for _, bad := range []string{strings.Repeat("x", 129), strings.Repeat("x", 900<<10), "a\x00b", "a\u202eb", "a\r\nb"} {
		if _, err := uc.Execute(ctx, app.OpenSessionInput{UserID: "alice", SessionID: bad}); !errors.As(err, new(*domain.ValidationError)) {
			t.Errorf("session id %.20q…: %v, want a validation error", bad, err)
		}
	}
}

// Every listener of a session hears the questions asked in it through this
// process, each once, in order with the answers; another user's questions
// in the same session id do not reach it.
func TestListenHearsTheSessionsQuestions(t *testing.T) {
	feed := newHandFeed()
	answers := runAnswers(t, feed)
	mem := newSessions()
	uc := &app.OpenSession{Sessions: mem, Answers: answers, HistoryLimit: 100}
	sess, err := uc.Execute(context.Background(), app.OpenSessionInput{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var tabs [2]recorder
	for i := range tabs {
		l := tabs[i].listener()
		l.Question = func(m domain.Message) {
			tabs[i].mu.Lock()
			defer tabs[i].mu.Unlock()
			tabs[i].events = append(tabs[i].events, "question:"+m.MessageID+":"+m.Text)
		}
		defer sess.Listen(context.Background(), "", l)()
	}
	ask := &app.Ask{Sessions: mem, Publisher: &answering{}, Answers: answers}
	if _, err := ask.Execute(context.Background(), app.AskInput{UserID: "alice", SessionID: sess.ID, Text: "hi", MessageID: "q1"}); err != nil {
		t.Fatal(err)
	}
	feed.Answer(answer(sess.ID, "a1"))
	for i := range tabs {
		if got := tabs[i].got(); got != "question:q1:hi answer:a1" {
			t.Errorf("listener %d got %q, want the question, then the answer", i, got)
		}
	}
}

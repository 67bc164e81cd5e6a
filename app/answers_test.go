package app_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

func mustKey(t *testing.T, secret string) *domain.AnswerKey {
	t.Helper()
	k, err := domain.NewAnswerKey([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	ourSecret   = "our answer key: 32 bytes or more, shared"
	otherSecret = "another answer key, some other deployment"
)

// countingStore counts the calls the router makes, and fails them with
// domain.ErrUnavailable while down is above zero (one less per call).
type countingStore struct {
	ports.SessionStore
	calls atomic.Int32
	down  atomic.Int32
}

func (s *countingStore) Turn(ctx context.Context, session, id string) (domain.Turn, error) {
	s.calls.Add(1)
	if s.down.Add(-1) >= 0 {
		return domain.Turn{}, domain.ErrUnavailable
	}
	return s.SessionStore.Turn(ctx, session, id)
}

func (s *countingStore) Owner(ctx context.Context, session string) (string, error) {
	s.calls.Add(1)
	return s.SessionStore.Owner(ctx, session)
}

// rejections records what the router refused, and why.
type rejections struct {
	mu   sync.Mutex
	errs map[string]error // by message id
}

func (r *rejections) add(m domain.Message, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs == nil {
		r.errs = map[string]error{}
	}
	r.errs[m.MessageID] = err
}

func (r *rejections) of(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[id]
}

// trustingRouter runs a router that checks answers with ourSecret against
// store, until the test ends.
func trustingRouter(t *testing.T, f *handFeed, store ports.SessionStore) (*app.Answers, *rejections) {
	t.Helper()
	rej := &rejections{}
	a := &app.Answers{Feed: f, Key: mustKey(t, ourSecret), Sessions: store, Rejected: rej.add}
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
	return a, rej
}

// asked records question id of user in session, as the retrieve stage
// does before the prompt exists.
func asked(t *testing.T, s ports.SessionStore, session, user, id string) {
	t.Helper()
	if _, err := s.Record(context.Background(), session, user, domain.Turn{Role: domain.RoleUser, MessageID: id, Text: "q " + id}, 10); err != nil {
		t.Fatal(err)
	}
}

// An answer reaches a session's connection only if the answerer signed it
// and it replies to a question of that session, asked by its owner; each
// refusal says why.
func TestAnswersDeliversOnlyTheAnswerersAnswersToQuestionsAsked(t *testing.T) {
	ours, theirs := mustKey(t, ourSecret), mustKey(t, otherSecret)
	store := newSessions()
	asked(t, store, "s1", "alice", "q1")
	asked(t, store, "s2", "mallory", "q2")
	if err := store.Append(context.Background(), "s1", domain.Turn{Role: domain.RoleAssistant, MessageID: "a0", Text: "an answer"}); err != nil {
		t.Fatal(err)
	}
	answer := func(id, session, user, replyTo string) domain.Message {
		return domain.Message{MessageID: id, SessionID: session, UserID: user, Type: domain.TypeAnswer, Text: "text of " + id, ReplyTo: replyTo, CreatedAt: time.Now()}
	}
	tampered := ours.Sign(answer("tampered", "s1", "alice", "q1"))
	tampered.Text = "changed after signing"
	tests := []struct {
		name string
		give domain.Message
		want error // nil: delivered
	}{
		{"unsigned, as the producer writes it", answer("unsigned", "s1", "alice", "q1"), domain.ErrUnsigned},
		{"signed with another key", theirs.Sign(answer("other-key", "s1", "alice", "q1")), &domain.KeyMismatchError{}},
		{"changed after signing", tampered, domain.ErrBadSignature},
		{"signature of another message", func() domain.Message {
			m := answer("copied", "s1", "alice", "q1")
			m.Signature = ours.Sign(answer("original", "s1", "alice", "q1")).Signature
			return m
		}(), domain.ErrBadSignature},
		{"reply_to a question of another session", ours.Sign(answer("cross", "s1", "alice", "q2")), app.ErrNotAsked},
		{"reply_to an answer", ours.Sign(answer("to-answer", "s1", "alice", "a0")), app.ErrNotAsked},
		{"reply_to nothing asked", ours.Sign(answer("unknown", "s1", "alice", "q-unknown")), app.ErrNotAsked},
		{"no reply_to", ours.Sign(answer("no-reply", "s1", "alice", "")), app.ErrNotAsked},
		{"to a user who does not own the session", ours.Sign(answer("not-owner", "s1", "mallory", "q1")), app.ErrNotAsked},
		{"the answerer's answer to alice's question", ours.Sign(answer("genuine", "s1", "alice", "q1")), nil},
	}
	feed := newHandFeed()
	answers, rej := trustingRouter(t, feed, store)
	var mu sync.Mutex
	var got []string
	stop := answers.Subscribe("s1", func(m domain.Message) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m.MessageID)
	}, nil)
	defer stop()
	for _, tt := range tests {
		feed.Answer(tt.give)
		err := rej.of(tt.give.MessageID)
		var mismatch *domain.KeyMismatchError
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: refused (%v), want delivered", tt.name, err)
		case errors.As(tt.want, &mismatch):
			if !errors.As(err, &mismatch) || mismatch.Theirs != theirs.ID() || mismatch.Ours != ours.ID() {
				t.Errorf("%s: refused with %v, want a key mismatch naming %s and %s", tt.name, err, theirs.ID(), ours.ID())
			}
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: refused with %v, want %v", tt.name, err, tt.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "genuine" {
		t.Fatalf("the connection got %v, want only the genuine answer", got)
	}
}

// POST /chat waits for the answer to its question in its session: a
// genuine, signed answer to the same question id in another session (ids
// are the client's to choose, so another user may reuse one) is not it,
// and neither is a forgery.
func TestChatTakesOnlyTheAnswerOfItsSession(t *testing.T) {
	ours, theirs := mustKey(t, ourSecret), mustKey(t, otherSecret)
	store := newSessions()
	feed := newHandFeed()
	answers, _ := trustingRouter(t, feed, store)
	pub := &answering{feed: feed}
	pub.reply = func(q domain.Message) (domain.Message, bool) {
		asked(t, store, q.SessionID, q.UserID, q.MessageID)
		asked(t, store, "mallory-s", "mallory", q.MessageID) // the same id, in her session
		forged := answerTo(q, "forged")
		feed.Answer(forged)
		feed.Answer(theirs.Sign(answerTo(q, "other key")))
		elsewhere := answerTo(q, "mallory's")
		elsewhere.SessionID, elsewhere.UserID = "mallory-s", "mallory"
		feed.Answer(ours.Sign(elsewhere))
		return ours.Sign(answerTo(q, "yours")), true
	}
	uc := &app.Chat{Ask: &app.Ask{Sessions: store, Publisher: pub}, Answers: answers, Timeout: 5 * time.Second}
	res, err := uc.Execute(context.Background(), app.ChatInput{UserID: "alice", SessionID: "alice-s", Text: "hello?"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer.Text != "yours" {
		t.Fatalf("POST /chat got %q, want the genuine answer", res.Answer.Text)
	}
}

// Most answers a gateway reads are for other replicas' connections: those
// cost no session look-up, and are not counted as refused.
func TestAnswersLooksUpOnlyAnswersForThisProcess(t *testing.T) {
	store := &countingStore{SessionStore: newSessions()}
	feed := newHandFeed()
	answers, rej := trustingRouter(t, feed, store)
	stop := answers.Subscribe("mine", func(domain.Message) {}, nil)
	defer stop()
	for i := range 100 {
		feed.Answer(domain.Message{MessageID: "x" + string(rune('a'+i%26)), SessionID: "elsewhere", UserID: "u", Type: domain.TypeAnswer, Text: "t", ReplyTo: "q"})
	}
	if n := store.calls.Load(); n != 0 {
		t.Fatalf("%d session look-ups for answers no one here waits for, want 0", n)
	}
	if rej.of("xa") != nil {
		t.Fatal("an answer for another replica was counted as refused")
	}
	feed.Answer(mustKey(t, ourSecret).Sign(domain.Message{MessageID: "m", SessionID: "mine", UserID: "u", Type: domain.TypeAnswer, Text: "t", ReplyTo: "q"}))
	if store.calls.Load() == 0 {
		t.Fatal("an answer for this process's connection was not looked up")
	}
}

// A session store that does not answer holds the answer briefly (a blip
// passes unnoticed); one that stays down drops it, never delivering it
// unchecked, and says so.
func TestAnswersWhenTheSessionStoreIsDown(t *testing.T) {
	key := mustKey(t, ourSecret)
	store := &countingStore{SessionStore: newSessions()}
	asked(t, store, "s1", "alice", "q1")
	asked(t, store, "s1", "alice", "q2")
	feed := newHandFeed()
	answers, rej := trustingRouter(t, feed, store)
	var got []string
	stop := answers.Subscribe("s1", func(m domain.Message) { got = append(got, m.MessageID) }, nil)
	defer stop()
	answer := func(id, q string) domain.Message {
		return key.Sign(domain.Message{MessageID: id, SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, Text: "t", ReplyTo: q})
	}

	store.down.Store(2) // a blip: two failed calls
	feed.Answer(answer("a1", "q1"))
	if len(got) != 1 || rej.of("a1") != nil {
		t.Fatalf("after a blip: delivered %v, refused %v; want a1 delivered", got, rej.of("a1"))
	}

	store.down.Store(1 << 20) // down for good
	start := time.Now()
	feed.Answer(answer("a2", "q2"))
	took := time.Since(start)
	if err := rej.of("a2"); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("with the store down: refused with %v, want domain.ErrUnavailable", err)
	}
	if len(got) != 1 {
		t.Fatalf("with the store down the connection got %v: an unchecked answer was delivered", got)
	}
	if took < 500*time.Millisecond || took > 3*time.Second {
		t.Fatalf("the answer was held %s, want about a second", took)
	}
}

// heldStore holds Turn look-ups of the session gated until the test
// opens the gate.
type heldStore struct {
	ports.SessionStore
	gated string
	gate  chan struct{}
}

func (s *heldStore) Turn(ctx context.Context, session, id string) (domain.Turn, error) {
	if session == s.gated {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return domain.Turn{}, ctx.Err()
		}
	}
	return s.SessionStore.Turn(ctx, session, id)
}

// With Concurrency, an answer whose check is slow holds back only its own
// session's later answers, which still come in order, not other sessions'.
func TestAnswersChecksSessionsSideBySideEachInOrder(t *testing.T) {
	key := mustKey(t, ourSecret)
	store := &heldStore{SessionStore: newSessions(), gated: "slow", gate: make(chan struct{})}
	asked(t, store, "slow", "alice", "q1")
	asked(t, store, "slow", "alice", "q2")
	asked(t, store, "fast", "bob", "q3")
	feed := newHandFeed()
	a := &app.Answers{Feed: feed, Key: key, Sessions: store, Concurrency: 8}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Answers.Run: %v", err)
		}
	}()
	<-feed.up
	got := make(chan string, 3)
	for _, s := range []string{"slow", "fast"} {
		stop := a.Subscribe(s, func(m domain.Message) { got <- m.MessageID }, nil)
		defer stop()
	}
	answer := func(id, session, user, q string) domain.Message {
		return key.Sign(domain.Message{MessageID: id, SessionID: session, UserID: user, Type: domain.TypeAnswer, Text: "t", ReplyTo: q})
	}
	feed.Answer(answer("a1", "slow", "alice", "q1"))
	feed.Answer(answer("a2", "slow", "alice", "q2"))
	feed.Answer(answer("a3", "fast", "bob", "q3"))
	select {
	case id := <-got:
		if id != "a3" {
			t.Fatalf("first delivered %s while the slow session's check was held, want a3", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the fast session's answer waited behind the slow session's check")
	}
	close(store.gate)
	for _, want := range []string{"a1", "a2"} {
		select {
		case id := <-got:
			if id != want {
				t.Fatalf("delivered %s, want %s: a session's answers in the order read", id, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s never delivered after the gate opened", want)
		}
	}
}

package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

// handDeltas is a delta feed the test drives: Delta hands a delta to every
// subscriber, as the Kafka feed would once it is written.
type handDeltas struct{ handFed[domain.Delta] }

func newHandDeltas() *handDeltas { return &handDeltas{handFed[domain.Delta]{up: make(chan struct{})}} }

func (f *handDeltas) Delta(d domain.Delta) { f.send(d) }

// deltaRouter runs a router that checks answers and deltas with ourSecret,
// until the test ends; rejected collects the refused deltas' errors.
// The router's session store is store.
func deltaRouter(t *testing.T, store ports.SessionStore) (*app.Answers, *handFeed, *handDeltas, *deltaRejections) {
	t.Helper()
	feed, deltas, rej := newHandFeed(), newHandDeltas(), &deltaRejections{}
	a := &app.Answers{Feed: feed, DeltaFeed: deltas, Key: mustKey(t, ourSecret), Sessions: store, DeltaRejected: rej.add}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Answers.Run: %v", err)
		}
	})
	<-feed.up
	<-deltas.up
	return a, feed, deltas, rej
}

type deltaRejections struct {
	mu   sync.Mutex
	errs []error
}

func (r *deltaRejections) add(_ domain.Delta, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *deltaRejections) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error{}, r.errs...)
}

// deltaRecorder is a listener that records answers and deltas in order.
type deltaRecorder struct {
	mu     sync.Mutex
	events []string
}

func (r *deltaRecorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *deltaRecorder) listener() app.Listener {
	return app.Listener{
		History: func(turns []domain.Turn, _ error) { r.add(fmt.Sprintf("history:%d", len(turns))) },
		Answer:  func(m domain.Message) { r.add("answer:" + m.Text) },
		Delta:   func(d domain.Delta) { r.add(fmt.Sprintf("delta:%d/%d:%s", d.Attempt, d.Seq, d.Text)) },
	}
}

func (r *deltaRecorder) got() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, " ")
}

// signed is alice's delta of question q in session s, signed with key.
func signed(key *domain.AnswerKey, s, q string, attempt int64, seq int, text string) domain.Delta {
	return key.SignDelta(domain.Delta{ReplyTo: q, SessionID: s, UserID: "alice", Attempt: attempt, Seq: seq, Text: text})
}

func listen(t *testing.T, a *app.Answers, user, session string, l app.Listener) {
	t.Helper()
	uc := &app.OpenSession{Sessions: newSessions(), Answers: a, HistoryLimit: 100}
	sess, err := uc.Execute(context.Background(), app.OpenSessionInput{UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	sess.ID = session // a new session, under the id the test names
	t.Cleanup(sess.Listen(context.Background(), "", l))
}

// A signed delta reaches the sockets of the session it names, in order,
// and no other session's; forged ones are dropped and counted; the final
// answer ends the stream, and a delta after it is not shown.
func TestDeltasReachOnlyTheirSessionSigned(t *testing.T) {
	store := newSessions()
	a, feed, deltas, rej := deltaRouter(t, store)
	key, other := mustKey(t, ourSecret), mustKey(t, otherSecret)
	asked(t, store, "s1", "alice", "q1")
	var mine, theirs, eve deltaRecorder
	listen(t, a, "alice", "s1", mine.listener())
	listen(t, a, "alice", "s2", theirs.listener())
	listen(t, a, "eve", "s1", eve.listener()) // a socket of another user bound to s1's id

	deltas.Delta(signed(key, "s1", "q1", 7, 0, "Hello"))
	deltas.Delta(signed(other, "s1", "q1", 7, 1, " FORGED")) // another key
	deltas.Delta(domain.Delta{ReplyTo: "q1", SessionID: "s1", UserID: "alice", Attempt: 7, Seq: 1, Text: " UNSIGNED"})
	tampered := signed(key, "s1", "q1", 7, 1, " world")
	tampered.Text = " TAMPERED"
	deltas.Delta(tampered)
	moved := signed(key, "s2", "q1", 7, 1, " world") // signed for s2, claimed for s1
	moved.SessionID = "s1"
	deltas.Delta(moved)
	deltas.Delta(signed(key, "s1", "q1", 7, 1, " world"))
	feed.Answer(key.Sign(domain.Message{MessageID: domain.DerivedID("q1", "answer"), SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, Text: "Hello world", ReplyTo: "q1"}))
	eventually(t, "the answer", func() bool { return strings.Contains(mine.got(), "answer:") })
	deltas.Delta(signed(key, "s1", "q1", 7, 2, " LATE")) // after the final answer
	deltas.Delta(signed(key, "s1", "q1", 8, 0, " LATE")) // even a new attempt

	if want := "delta:7/0:Hello delta:7/1: world answer:Hello world"; mine.got() != want {
		t.Errorf("s1's socket got %q, want %q", mine.got(), want)
	}
	if theirs.got() != "" || eve.got() != "" {
		t.Errorf("other sockets got %q and %q, want nothing", theirs.got(), eve.got())
	}
	errs := rej.all()
	if len(errs) != 4 {
		t.Fatalf("rejected %d deltas (%v), want 4", len(errs), errs)
	}
	var mismatch *domain.KeyMismatchError
	if !errors.As(errs[0], &mismatch) || !errors.Is(errs[1], domain.ErrUnsigned) ||
		!errors.Is(errs[2], domain.ErrBadSignature) || !errors.Is(errs[3], domain.ErrBadSignature) {
		t.Errorf("rejections = %v", errs)
	}
}

// A socket that resumes during a stream gets nothing of that answer until
// the final answer; one that joined mid-stream neither; a retry's seq 0
// starts the text again, and the old attempt's tail never mixes in.
func TestDeltasOnResumeAndRetry(t *testing.T) {
	mem := newSessions()
	a, feed, deltas, _ := deltaRouter(t, mem)
	key := mustKey(t, ourSecret)
	asked(t, mem, "s1", "alice", "q1")
	store := &gatedStore{SessionStore: mem, reading: make(chan struct{}), gate: make(chan struct{})}
	uc := &app.OpenSession{Sessions: store, Answers: a, HistoryLimit: 100}
	sess, err := uc.Execute(context.Background(), app.OpenSessionInput{UserID: "alice", SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	var resumed, live deltaRecorder
	listen(t, a, "alice", "s1", live.listener())
	listened := make(chan func())
	go func() { listened <- sess.Listen(context.Background(), "", resumed.listener()) }()
	<-store.reading
	deltas.Delta(signed(key, "s1", "q1", 1, 0, "A0")) // while the history is read
	close(store.gate)
	t.Cleanup(<-listened)
	deltas.Delta(signed(key, "s1", "q1", 1, 1, "A1"))
	deltas.Delta(signed(key, "s1", "q1", 2, 0, "B0")) // the retry
	deltas.Delta(signed(key, "s1", "q1", 1, 2, "A2")) // the first attempt's tail, late
	deltas.Delta(signed(key, "s1", "q1", 2, 1, "B1"))
	feed.Answer(key.Sign(domain.Message{MessageID: domain.DerivedID("q1", "answer"), SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, Text: "B0B1", ReplyTo: "q1"}))
	eventually(t, "the answers", func() bool {
		return strings.HasSuffix(resumed.got(), "answer:B0B1") && strings.HasSuffix(live.got(), "answer:B0B1")
	})
	if want := "delta:1/0:A0 delta:1/1:A1 delta:2/0:B0 delta:2/1:B1 answer:B0B1"; live.got() != want {
		t.Errorf("the live socket got %q, want %q", live.got(), want)
	}
	// Resumed during attempt 1: none of it. Attempt 2 started afresh
	// after the resume, so it may be shown whole.
	if want := "history:1 delta:2/0:B0 delta:2/1:B1 answer:B0B1"; resumed.got() != want {
		t.Errorf("the resumed socket got %q, want %q", resumed.got(), want)
	}
}

// POST /chat's stream (StreamChat): the deltas of its own question, in
// order, then the answer; another question's deltas never.
func TestStreamChatStreamsItsAnswer(t *testing.T) {
	sessions := newSessions()
	a, feed, deltas, _ := deltaRouter(t, sessions)
	key := mustKey(t, ourSecret)
	pub := &answering{}
	ask := &app.Ask{Sessions: sessions, Publisher: pub, Answers: a}
	uc := &app.StreamChat{Ask: ask, Answers: a, Timeout: 5 * time.Second}
	s, err := uc.Execute(context.Background(), app.ChatInput{UserID: "alice", SessionID: "s1", Text: "hi?"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := s.Query.MessageID
	asked(t, sessions, "s1", "alice", q)
	go func() {
		deltas.Delta(signed(key, "s1", "other", 1, 0, "NOT MINE"))
		deltas.Delta(signed(key, "s1", q, 1, 0, "Hi"))
		deltas.Delta(signed(key, "s1", q, 1, 2, "GAP"))
		deltas.Delta(signed(key, "s1", q, 2, 0, "Hello"))
		deltas.Delta(signed(key, "s1", q, 2, 1, " there"))
		feed.Answer(key.Sign(domain.Message{MessageID: domain.DerivedID(q, "answer"), SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, Text: "Hello there", ReplyTo: q}))
	}()
	var got []string
	for {
		ev, err := s.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ev.Final {
			got = append(got, "answer:"+ev.Answer.Text)
			break
		}
		got = append(got, fmt.Sprintf("%d/%d:%s", ev.Delta.Attempt, ev.Delta.Seq, ev.Delta.Text))
	}
	if want := "1/0:Hi 2/0:Hello 2/1: there answer:Hello there"; strings.Join(got, " ") != want {
		t.Errorf("the stream was %q, want %q", strings.Join(got, " "), want)
	}
}

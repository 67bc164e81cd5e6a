package app_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/memory"
	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// widenFeed is a hand feed that counts Widen calls and their releases.
type widenFeed struct {
	*handFeed
	mu                sync.Mutex
	widened, released int
}

func (f *widenFeed) Widen(context.Context) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.widened++
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.released++
		})
	}, nil
}

func (f *widenFeed) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.widened, f.released
}

// startWidened runs Answers on a widenFeed, with alice's session s1 in an
// in-memory store; the context ends with the test.
func startWidened(t *testing.T) (*widenFeed, *app.Answers, *memory.Sessions, context.Context) {
	t.Helper()
	feed := &widenFeed{handFeed: newHandFeed()}
	answers := &app.Answers{Feed: feed}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = answers.Run(ctx) }()
	<-feed.up
	mem := newSessions()
	seed(t, mem, "s1", "alice")
	return feed, answers, mem, ctx
}

// A resume that waits for answers (docs/design.md, "Answer routing")
// widens the feed, and releases it once they came; one that waits for
// nothing does not widen.
func TestResumeWidensForPendingAnswers(t *testing.T) {
	for _, c := range []struct {
		name    string
		history []domain.Turn // after the session's opening
		pending []string      // the client's
		want    int           // widenings
	}{
		{"a question of the history without its answer", []domain.Turn{{Role: domain.RoleUser, MessageID: "q1"}}, nil, 1},
		{"a pending question the history does not hold yet", nil, []string{"q1"}, 1},
		{"every question answered", []domain.Turn{{Role: domain.RoleUser, MessageID: "q1"}, {Role: domain.RoleAssistant, MessageID: domain.DerivedID("q1", "answer")}}, []string{"q1"}, 0},
		{"an old unanswered question", []domain.Turn{{Role: domain.RoleUser, MessageID: "q1", At: time.Now().Add(-time.Hour)}}, nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			feed := &widenFeed{handFeed: newHandFeed()}
			answers := &app.Answers{Feed: feed}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = answers.Run(ctx) }()
			<-feed.up
			mem := newSessions()
			seed(t, mem, "s1", "alice")
			for _, turn := range c.history {
				if turn.At.IsZero() {
					turn.At = time.Now()
				}
				if err := mem.Append(ctx, "s1", turn); err != nil {
					t.Fatal(err)
				}
			}
			uc := &app.OpenSession{Sessions: mem, Answers: answers, HistoryLimit: 100}
			sess, err := uc.Execute(ctx, app.OpenSessionInput{UserID: "alice", SessionID: "s1", Pending: c.pending})
			if err != nil {
				t.Fatal(err)
			}
			var rec recorder
			stop := sess.Listen(ctx, "", rec.listener())
			defer stop()
			if w, _ := feed.counts(); w != c.want {
				t.Fatalf("widened %d times, want %d", w, c.want)
			}
			if c.want == 0 {
				return
			}
			if _, r := feed.counts(); r != 0 {
				t.Fatal("released before the answer came")
			}
			feed.Answer(domain.Message{MessageID: domain.DerivedID("q1", "answer"), SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, Text: "a", ReplyTo: "q1"})
			eventually(t, "the widening released once the answer came", func() bool { _, r := feed.counts(); return r == 1 })
		})
	}
}

// A resumed socket that closes before its answers came releases the
// widening too.
func TestResumeReleasesTheWideningOnStop(t *testing.T) {
	feed, answers, mem, ctx := startWidened(t)
	sess, err := (&app.OpenSession{Sessions: mem, Answers: answers, HistoryLimit: 100}).Execute(ctx, app.OpenSessionInput{UserID: "alice", SessionID: "s1", Pending: []string{"q1"}})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	stop := sess.Listen(ctx, "", rec.listener())
	stop()
	if w, r := feed.counts(); w != 1 || r != 1 {
		t.Fatalf("widened %d, released %d; want 1 and 1", w, r)
	}
}

// An awaited answer that the widened feed does not bring (it came after
// the grace period ended) reaches the resumed connection from the history,
// once, and the catch-up then ends the widening.
func TestResumeCatchesUpFromTheHistory(t *testing.T) {
	feed, answers, mem, ctx := startWidened(t)
	uc := &app.OpenSession{Sessions: mem, Answers: answers, HistoryLimit: 100, CatchUpEvery: 10 * time.Millisecond}
	sess, err := uc.Execute(ctx, app.OpenSessionInput{UserID: "alice", SessionID: "s1", Pending: []string{"q1", "q2"}})
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	// Like a WebSocket upgrade's, Listen's context ends when it returns.
	lctx, lcancel := context.WithCancel(ctx)
	stop := sess.Listen(lctx, "", rec.listener())
	lcancel()
	defer stop()
	a1, a2 := domain.DerivedID("q1", "answer"), domain.DerivedID("q2", "answer")
	for _, turn := range []domain.Turn{
		{Role: domain.RoleUser, MessageID: "q1", At: time.Now()},
		{Role: domain.RoleAssistant, MessageID: a1, Text: "one", At: time.Now()},
		{Role: domain.RoleUser, MessageID: "q3", At: time.Now()},
		{Role: domain.RoleAssistant, MessageID: domain.DerivedID("q3", "answer"), Text: "not awaited", At: time.Now()},
	} {
		if err := mem.Append(ctx, "s1", turn); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the first answer from the history", func() bool { return strings.Contains(rec.got(), "answer:"+a1) })
	if _, r := feed.counts(); r != 0 {
		t.Fatal("released while q2 is still awaited")
	}
	// q2's answer comes live meanwhile, and is in the history too: once.
	feed.Answer(domain.Message{MessageID: a2, SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, Text: "two", ReplyTo: "q2"})
	if err := mem.Append(ctx, "s1", domain.Turn{Role: domain.RoleAssistant, MessageID: a2, Text: "two", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the widening released", func() bool { _, r := feed.counts(); return r == 1 })
	time.Sleep(50 * time.Millisecond) // a few more catch-up periods, had it not ended
	if got, want := rec.got(), "history: answer:"+a1+" answer:"+a2; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/app"
	"github.com/kchat/kchat/domain"
)

// The last deltas of a stream travel on another topic than the answer, so
// the answer may come first: a connection that shows the stream holds the
// answer back until the deltas add up to it (then sends it at once), or a
// short while when they do not come; a failure answer, which the stream
// does not add up to, is not held.
func TestAnswerWaitsForItsStreamsLastDeltas(t *testing.T) {
	store := newSessions()
	a, feed, deltas, _ := deltaRouter(t, store)
	key := mustKey(t, ourSecret)
	asked(t, store, "s1", "alice", "q1")
	asked(t, store, "s1", "alice", "q2")
	asked(t, store, "s1", "alice", "q3")
	var rec deltaRecorder
	listen(t, a, "alice", "s1", rec.listener())
	answer := func(q, text string) {
		feed.Answer(key.Sign(domain.Message{MessageID: domain.DerivedID(q, "answer"), SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, Text: text, ReplyTo: q}))
	}

	// The answer first, its last delta just after: both shown, in order.
	deltas.Delta(signed(key, "s1", "q1", 1, 0, "Hello"))
	answer("q1", "Hello world")
	deltas.Delta(signed(key, "s1", "q1", 1, 1, " world"))
	eventually(t, "q1's answer", func() bool { return strings.Contains(rec.got(), "answer:Hello world") })

	// The last delta never comes: the answer after the wait.
	deltas.Delta(signed(key, "s1", "q2", 1, 0, "Half"))
	start := time.Now()
	answer("q2", "Half an answer")
	eventually(t, "q2's answer", func() bool { return strings.Contains(rec.got(), "answer:Half an answer") })
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("q2's answer waited %s for deltas that never came, want about 100 ms", waited)
	}

	// A failure answer is not held for a stream it does not continue.
	deltas.Delta(signed(key, "s1", "q3", 1, 0, "Par"))
	answer("q3", "The answer failed")
	eventually(t, "q3's answer", func() bool { return strings.Contains(rec.got(), "answer:The answer failed") })

	want := "delta:1/0:Hello delta:1/1: world answer:Hello world delta:1/0:Half answer:Half an answer delta:1/0:Par answer:The answer failed"
	if got := rec.got(); got != want {
		t.Errorf("the socket got %q, want %q", got, want)
	}
}

// POST /chat's stream does the same: its last delta after the answer is
// still streamed before the answer.
func TestStreamChatWaitsForItsStreamsLastDelta(t *testing.T) {
	sessions := newSessions()
	a, feed, deltas, _ := deltaRouter(t, sessions)
	key := mustKey(t, ourSecret)
	ask := &app.Ask{Sessions: sessions, Publisher: &answering{}, Answers: a}
	s, err := (&app.StreamChat{Ask: ask, Answers: a, Timeout: 5 * time.Second}).Execute(context.Background(), app.ChatInput{UserID: "alice", SessionID: "s1", Text: "hi?"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := s.Query.MessageID
	asked(t, sessions, "s1", "alice", q)
	deltas.Delta(signed(key, "s1", q, 1, 0, "Hello"))
	first, err := s.Next(context.Background())
	if err != nil || first.Final {
		t.Fatalf("first event %+v, %v; want the first delta", first, err)
	}
	feed.Answer(key.Sign(domain.Message{MessageID: domain.DerivedID(q, "answer"), SessionID: "s1", UserID: "alice", Type: domain.TypeAnswer, Text: "Hello there", ReplyTo: q}))
	go func() {
		time.Sleep(20 * time.Millisecond) // the answer is in first
		deltas.Delta(signed(key, "s1", q, 1, 1, " there"))
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
	if want := "1/1: there answer:Hello there"; strings.Join(got, " ") != want {
		t.Errorf("the stream was %q, want %q", strings.Join(got, " "), want)
	}
}

package ws

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/domain"
)

// deltaFeed is a delta feed the test drives by hand.
type deltaFeed struct {
	subscribed chan struct{}
	fn         func(domain.Delta)
}

func (f *deltaFeed) Subscribe(_ context.Context, fn func(domain.Delta)) error {
	f.fn = fn
	close(f.subscribed)
	return nil
}

// delta hands the anonymous user's delta of question q in session to the
// router, as the feed would.
func (s *server) delta(session, q string, attempt int64, seq int, text string) {
	s.deltas.fn(domain.Delta{ReplyTo: q, SessionID: session, UserID: "anonymous", Attempt: attempt, Seq: seq, Text: text})
}

// ask sends a question on conn and returns its message id.
func ask(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	if err := conn.WriteJSON(frame{"type": "query", "id": "r1", "message": "how?"}); err != nil {
		t.Fatal(err)
	}
	return readType(t, conn, "ack")["message_id"].(string)
}

func (s *server) finalAnswer(session, q, text string) {
	s.feed.fn(domain.Message{MessageID: domain.DerivedID(q, "answer"), SessionID: session, UserID: "anonymous", ReplyTo: q, Type: domain.TypeAnswer, Text: text})
}

// The asking socket gets answer_delta frames in order, of one attempt at
// a time, then the answer; a gap holds the rest of the attempt back, a
// retry's seq 0 starts again; another session's socket gets none.
func TestAnswerDeltaFrames(t *testing.T) {
	s := start(t, nil)
	conn := s.dial("")
	session := readType(t, conn, "session")["session_id"].(string)
	other := s.dial("")
	otherSession := readType(t, other, "session")["session_id"].(string)
	q := ask(t, conn)

	s.delta(session, q, 1, 0, "The ")
	s.delta(session, q, 1, 1, "first ")
	s.delta(session, q, 1, 3, "GAP")     // seq 2 lost
	s.delta(session, q, 1, 4, "AFTER")   // still the broken attempt
	s.delta(session, q, 2, 0, "A ")      // the retry
	s.delta(session, q, 1, 2, "LATE")    // the old attempt, late
	s.delta(session, q, 2, 1, "second.") //
	s.delta(otherSession, q, 2, 2, "OTHER SESSION")
	s.finalAnswer(session, q, "A second.")
	s.delta(session, q, 2, 2, "AFTER THE ANSWER")

	var got []string
	for {
		f := read(t, conn)
		if f["type"] == "answer" {
			got = append(got, "answer:"+f["message"].(string))
			break
		}
		if f["type"] != "answer_delta" || f["reply_to"] != q {
			t.Fatalf("frame %v", f)
		}
		if len(f) != 5 {
			t.Errorf("answer_delta has %d members, want type, reply_to, attempt, seq, text: %v", len(f), f)
		}
		got = append(got, fmt.Sprintf("%v/%v:%v", f["attempt"], f["seq"], f["text"]))
	}
	want := []string{"1/0:The ", "1/1:first ", "2/0:A ", "2/1:second.", "answer:A second."}
	if !slices.Equal(got, want) {
		t.Errorf("frames %q, want %q", got, want)
	}
	// Nothing more on either socket: a ping's pong comes next.
	for _, c := range []*websocket.Conn{conn, other} {
		if err := c.WriteJSON(frame{"type": "ping"}); err != nil {
			t.Fatal(err)
		}
		readType(t, c, "pong")
	}
}

// A socket of the session that joins mid-stream (a second tab, or a
// resume) gets nothing of that answer but the final answer.
func TestAnswerDeltaJoinedMidStream(t *testing.T) {
	s := start(t, nil)
	first := s.dial("")
	session := readType(t, first, "session")["session_id"].(string)
	q := ask(t, first)
	s.delta(session, q, 1, 0, "one ")
	readType(t, first, "answer_delta")

	late := s.dial("?session_id=" + session)
	readType(t, late, "session")
	readType(t, late, "history")
	s.delta(session, q, 1, 1, "two ")
	s.delta(session, q, 1, 2, "three")
	s.finalAnswer(session, q, "one two three")
	if f := readType(t, late, "answer"); f["message"] != "one two three" {
		t.Errorf("the late socket's answer: %v", f)
	}
	for _, seq := range []float64{1, 2} {
		if f := readType(t, first, "answer_delta"); f["seq"] != seq {
			t.Errorf("the first socket's frame %v, want seq %v", f, seq)
		}
	}
	readType(t, first, "answer")
}

// A client written before answer_delta existed (it knows session, ack,
// answer, question, history, error and pong, and skips any other type, as
// the protocol asks) gets its answer unchanged.
func TestClientThatKnowsOnlyTodaysFrames(t *testing.T) {
	s := start(t, nil)
	conn := s.dial("")
	session := readType(t, conn, "session")["session_id"].(string)
	if err := conn.WriteJSON(frame{"type": "query", "id": "r1", "message": "how?"}); err != nil {
		t.Fatal(err)
	}
	type todaysFrame struct {
		Type      string `json:"type"`
		MessageID string `json:"message_id"`
		ReplyTo   string `json:"reply_to"`
		Message   string `json:"message"`
	}
	known := []string{"session", "ack", "answer", "question", "history", "error", "pong"}
	var asked string
	for {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var f todaysFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("not JSON: %s", data)
		}
		if !slices.Contains(known, f.Type) {
			continue // today's clients skip what they do not know
		}
		switch f.Type {
		case "ack":
			asked = f.MessageID
			go func(q string) { // the pipeline streams its answer
				for i, w := range []string{"Start ", "with ", "make run."} {
					s.delta(session, q, 1, i, w)
				}
				s.finalAnswer(session, q, "Start with make run.")
			}(asked)
		case "answer":
			if asked == "" || f.ReplyTo != asked || f.Message != "Start with make run." {
				t.Fatalf("answer %+v to %q", f, asked)
			}
			return
		default:
			t.Fatalf("unexpected %s frame: %s", f.Type, data)
		}
	}
}

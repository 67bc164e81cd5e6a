package ws

import (
	"testing"
	"time"

	"github.com/kchat/kchat/domain"
)

// An answerer quicker than the query's publish: the answer's deltas and
// the answer itself reach the feed before Execute returns. The socket
// still gets the ack first (it names the message_id the answer replies
// to), then the deltas and the answer, in order.
func TestAnswerQuickerThanThePublishComesAfterTheAck(t *testing.T) {
	s := start(t, nil)
	conn := s.dial("")
	session := readType(t, conn, "session")["session_id"].(string)
	s.pub.before = func(q domain.Message) {
		s.delta(session, q.MessageID, 1, 0, "Run ")
		s.finalAnswer(session, q.MessageID, "Run make run.")
		time.Sleep(100 * time.Millisecond) // the answer reaches the socket meanwhile
	}
	if err := conn.WriteJSON(frame{"type": "query", "id": "r1", "message": "how?"}); err != nil {
		t.Fatal(err)
	}
	ack := readType(t, conn, "ack")
	q := ack["message_id"].(string)
	if d := readType(t, conn, "answer_delta"); d["reply_to"] != q {
		t.Fatalf("delta %v, want one replying to %s", d, q)
	}
	if a := readType(t, conn, "answer"); a["reply_to"] != q || a["message"] != "Run make run." {
		t.Fatalf("answer %v, want the one to %s", a, q)
	}
}

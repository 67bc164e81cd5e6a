package main

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

func TestResumeStress(t *testing.T) {
	testResumeStress(t, startVisitorsChat(t, kafkatest.Fake(t), testenv.Prefix("kfake"), ""), 10)
}

// TestIntegrationResumeStress: sessions resume over and over while their
// answers are being committed, on the real Kafka and Redis. The promise is
// no gap and no duplicate: no answer id reaches one connection twice (live
// and inside its history frame), and every question's answer reaches its
// session.
func TestIntegrationResumeStress(t *testing.T) {
	prefix := testenv.Prefix("it-resume")
	testResumeStress(t, startVisitorsChat(t, kafkatest.Real(t, prefix), prefix, testenv.RedisURL(t)), 40)
}

func testResumeStress(t *testing.T, addr string, sessions int) {
	// Resume for a while after the question, as fast as the gateway lets
	// us, so that many resumes fall while the answer is being committed:
	// the window between subscribing and reading the history.
	const spell = 3 * time.Second
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []string
		conns    int
		answered int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for i := range sessions {
		wg.Go(func() {
			v := newVisitor(t, 10+i)
			conn, status, err := v.dial(addr)
			if err != nil {
				fail("session %d: dial: %d %v", i, status, err)
				return
			}
			sid := readFrame(conn, "session")["session_id"].(string)
			conn.Close()
			// Ask a question whenever the last one was answered, and resume
			// in between: each answer is committed while resumes go on.
			pending, answers := "", 0
			for r, end := 0, time.Now().Add(spell); time.Now().Before(end) || pending != ""; r++ {
				if r > 2000 {
					fail("session %d: %s unanswered after %d resumes", i, pending, r)
					return
				}
				query := "?session_id=" + url.QueryEscape(sid)
				if r%2 == 1 && pending != "" {
					query += "&after=" + url.QueryEscape(pending)
				}
				c, resp, err := v.dialer.Dial("ws://"+addr+"/ws"+query, nil)
				if resp != nil {
					_ = resp.Body.Close()
				}
				if err != nil {
					fail("session %d resume %d: %v", i, r, err)
					return
				}
				ids := map[string]int{}
				collect(c, ids, pending == "" && time.Now().Before(end), &pending)
				c.Close()
				mu.Lock()
				conns++
				mu.Unlock()
				for id, n := range ids {
					if n > 1 {
						fail("session %d resume %d: answer %s reached the connection %d times", i, r, id, n)
					}
				}
				// The answer's id is derived from the question's.
				if pending != "" && ids[domain.DerivedID(pending, "answer")] > 0 {
					pending, answers = "", answers+1
				}
			}
			mu.Lock()
			answered += answers
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("%d sessions, %d resumed connections, %d questions answered", sessions, conns, answered)
	for _, p := range problems {
		t.Error(p)
	}
}

// readFrame reads until a frame of typ (nil after a read error).
func readFrame(conn *websocket.Conn, typ string) frame {
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var f frame
		if conn.ReadJSON(&f) != nil {
			return frame{"session_id": "", "message_id": ""}
		}
		if f["type"] == typ {
			return f
		}
	}
}

// collect reads a resumed connection up to its history frame; then, if
// ask is set, asks a question (its id goes to *pending once acknowledged);
// then reads a moment more (answers held during the replay come right
// after the history). It counts every answer id the connection got, in
// the history frame and live.
func collect(conn *websocket.Conn, ids map[string]int, ask bool, pending *string) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var f frame
		if conn.ReadJSON(&f) != nil {
			return
		}
		switch f["type"] {
		case "history":
			turns, _ := f["turns"].([]any)
			for _, x := range turns {
				if turn, _ := x.(map[string]any); turn["role"] == "assistant" {
					id, _ := turn["message_id"].(string)
					ids[id]++
				}
			}
			if ask {
				_ = conn.WriteJSON(frame{"type": "query", "id": "q", "message": "How do I start kchat?"})
				continue
			}
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		case "ack":
			*pending, _ = f["message_id"].(string)
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		case "answer":
			id, _ := f["message_id"].(string)
			ids[id]++
		}
	}
}

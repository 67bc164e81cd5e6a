package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// streamQuestion is one question of a stream session and what came back.
type streamQuestion struct {
	due        time.Time // zero until its ack: frames that came first
	ref        int
	firstDelta time.Time
	final      time.Time
	failed     bool
	deltas     int
}

// streamConn is one WebSocket session of the stream scenario: it notes
// when each question's first answer_delta and its answer arrive.
type streamConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex // one writer at a time

	mu    sync.Mutex
	byID  map[string]*streamQuestion // sent, not acked yet
	byMsg map[string]*streamQuestion // by message_id: acked, or seen before the ack
	open  int                        // sent and not answered
}

func newStreamConn(ws *websocket.Conn) *streamConn {
	return &streamConn{ws: ws, byID: map[string]*streamQuestion{}, byMsg: map[string]*streamQuestion{}}
}

// streamFrame is what the scenario reads of the gateway's frames.
type streamFrame struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	MessageID string `json:"message_id"`
	ReplyTo   string `json:"reply_to"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Error     string `json:"error"`
}

// warm asks one question and waits for its answer.
func (c *streamConn) warm(ctx context.Context) error {
	_ = c.ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	if err := c.ws.WriteJSON(map[string]string{"type": "query", "id": "warm", "message": questions[0]}); err != nil {
		return err
	}
	for ctx.Err() == nil {
		var f streamFrame
		if err := c.ws.ReadJSON(&f); err != nil {
			return err
		}
		switch {
		case f.Type == "answer" && f.Error != "":
			return fmt.Errorf("failed answer: %s", f.Error)
		case f.Type == "answer":
			return nil
		case f.Type == "error":
			return fmt.Errorf("%s: %s", f.Code, f.Message)
		}
	}
	return ctx.Err()
}

func (c *streamConn) send(st *streamTimes, seq, ref int, text string, due time.Time) {
	id := strconv.Itoa(seq)
	c.mu.Lock()
	c.byID[id] = &streamQuestion{due: due, ref: ref}
	c.open++
	c.mu.Unlock()
	st.sent.Add(1)
	c.wmu.Lock()
	err := c.ws.WriteJSON(map[string]string{"type": "query", "id": id, "message": text})
	c.wmu.Unlock()
	if err != nil {
		st.fail(err)
	}
}

// read notes the frames of each question until the socket closes.
func (c *streamConn) read(st *streamTimes) {
	for {
		var f streamFrame
		if err := c.ws.ReadJSON(&f); err != nil {
			return
		}
		now := time.Now()
		c.mu.Lock()
		c.note(st, f, now)
		c.mu.Unlock()
	}
}

// note applies one frame; c.mu is held.
func (c *streamConn) note(st *streamTimes, f streamFrame, now time.Time) {
	// seen is the question a delta or an answer belongs to, made up when
	// it comes before the ack.
	seen := func(msgID string) *streamQuestion {
		q, ok := c.byMsg[msgID]
		if !ok {
			q = &streamQuestion{}
			c.byMsg[msgID] = q
		}
		return q
	}
	switch f.Type {
	case "ack":
		q, ok := c.byID[f.ID]
		if !ok {
			return
		}
		delete(c.byID, f.ID)
		if early, ok := c.byMsg[f.MessageID]; ok {
			q.firstDelta, q.final, q.failed, q.deltas = early.firstDelta, early.final, early.failed, early.deltas
		}
		c.byMsg[f.MessageID] = q
		if !q.final.IsZero() {
			c.done(st, f.MessageID, q)
		}
	case "answer_delta":
		q := seen(f.ReplyTo)
		if q.firstDelta.IsZero() {
			q.firstDelta = now
		}
		q.deltas++
	case "answer":
		q := seen(f.ReplyTo)
		q.final, q.failed = now, f.Error != ""
		if !q.due.IsZero() {
			c.done(st, f.ReplyTo, q)
		}
	case "error":
		if _, ok := c.byID[f.ID]; ok {
			delete(c.byID, f.ID)
			c.open--
		}
		st.fail(fmt.Errorf("error frame %s: %s", f.Code, f.Message))
	}
}

func (c *streamConn) done(st *streamTimes, msgID string, q *streamQuestion) {
	delete(c.byMsg, msgID)
	c.open--
	st.finish(q)
}

func (c *streamConn) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// waitStreams waits up to d for the answers still on their way and
// returns how many never came.
func waitStreams(conns []*streamConn, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := 0
		for _, c := range conns {
			n += c.pending()
		}
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

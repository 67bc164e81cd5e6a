package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// chatConn is one WebSocket session of the load generator.
type chatConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex // one writer at a time

	mu    sync.Mutex
	byID  map[string]time.Time // due times of queries not acked yet
	byMsg map[string]time.Time // due times of acked queries, by message_id
	early map[string]bool      // answers that came before their ack
}

func dialChat(ctx context.Context, wsURL string, auth sessionAuth, i int) (*chatConn, error) {
	header, err := auth.header(i)
	if err != nil {
		return nil, err
	}
	ws, err := dialSession(ctx, wsURL, i, header, true)
	if err != nil {
		return nil, fmt.Errorf("websocket %d: %w", i, err)
	}
	return &chatConn{ws: ws, byID: map[string]time.Time{}, byMsg: map[string]time.Time{}, early: map[string]bool{}}, nil
}

type serverFrame struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	MessageID string `json:"message_id"`
	ReplyTo   string `json:"reply_to"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// warmReask is how long warm waits for an answer before it asks again (a
// variable for the test).
var warmReask = 15 * time.Second

// warm asks one question and waits up to a minute for an answer, asking
// again every warmReask: on a fresh start the first answer is sometimes
// not delivered at all (seen on builds before and after tracing), and
// that is not what a run measures. reasked says how often it asked again.
func (c *chatConn) warm(ctx context.Context) (reasked int, err error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	ask := func(n int) error {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.ws.WriteJSON(map[string]string{"type": "query", "id": "warm" + strconv.Itoa(n), "message": questions[0]})
	}
	if err := ask(0); err != nil {
		return 0, err
	}
	var asked atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(warmReask)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if ask(int(asked.Add(1))) != nil {
					return
				}
			}
		}
	}()
	for ctx.Err() == nil {
		var f serverFrame
		if err := c.ws.ReadJSON(&f); err != nil {
			return int(asked.Load()), err
		}
		switch f.Type {
		case "answer":
			return int(asked.Load()), nil
		case "error":
			return int(asked.Load()), fmt.Errorf("%s: %s", f.Code, f.Message)
		}
	}
	return int(asked.Load()), ctx.Err()
}

func (c *chatConn) send(rt *roundTrips, seq int, text string, due time.Time) {
	id := strconv.Itoa(seq)
	c.mu.Lock()
	c.byID[id] = due
	c.mu.Unlock()
	rt.sent.Add(1)
	c.wmu.Lock()
	err := c.ws.WriteJSON(map[string]string{"type": "query", "id": id, "message": text})
	c.wmu.Unlock()
	if err != nil {
		rt.fail(err)
	}
}

// read matches acks and answers to the queries' due times until the
// socket closes.
func (c *chatConn) read(rt *roundTrips) {
	for {
		var f serverFrame
		if err := c.ws.ReadJSON(&f); err != nil {
			return
		}
		c.mu.Lock()
		switch f.Type {
		case "ack":
			due := c.byID[f.ID]
			delete(c.byID, f.ID)
			if c.early[f.MessageID] {
				delete(c.early, f.MessageID)
				rt.answer(due)
			} else {
				c.byMsg[f.MessageID] = due
			}
		case "answer":
			if due, ok := c.byMsg[f.ReplyTo]; ok {
				delete(c.byMsg, f.ReplyTo)
				rt.answer(due)
			} else {
				c.early[f.ReplyTo] = true
			}
		case "error":
			delete(c.byID, f.ID)
			rt.fail(fmt.Errorf("error frame %s: %s", f.Code, f.Message))
		}
		c.mu.Unlock()
	}
}

func (c *chatConn) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID) + len(c.byMsg)
}

// waitAnswers waits up to 15 s for the answers still on their way.
func waitAnswers(conns []*chatConn) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, c := range conns {
			n += c.pending()
		}
		if n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
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

// warm asks one question and waits for its answer.
func (c *chatConn) warm(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	_ = c.ws.SetReadDeadline(deadline)
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	if err := c.ws.WriteJSON(map[string]string{"type": "query", "id": "warm", "message": questions[0]}); err != nil {
		return err
	}
	for ctx.Err() == nil {
		var f serverFrame
		if err := c.ws.ReadJSON(&f); err != nil {
			return err
		}
		switch f.Type {
		case "answer":
			return nil
		case "error":
			return fmt.Errorf("%s: %s", f.Code, f.Message)
		}
	}
	return ctx.Err()
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

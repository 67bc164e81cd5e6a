package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The client side of Centrifugo's JSON protocol over WebSocket, as much
// as the peer scenario uses: connect with a token, publications pushed on
// server-side subscriptions, pings answered.

// cfError is an error of the client protocol or the server API.
type cfError struct {
	Code    uint32 `json:"code"`
	Message string `json:"message"`
}

func (e *cfError) Error() string { return fmt.Sprintf("centrifugo error %d: %s", e.Code, e.Message) }

// cfReply is what kbench reads of a reply or push of Centrifugo's JSON
// client protocol.
type cfReply struct {
	ID      uint32   `json:"id"`
	Error   *cfError `json:"error"`
	Connect *struct {
		Client string                     `json:"client"`
		Subs   map[string]json.RawMessage `json:"subs"`
		Pong   bool                       `json:"pong"`
	} `json:"connect"`
	Push *struct {
		Channel string `json:"channel"`
		Pub     *struct {
			Data json.RawMessage `json:"data"`
		} `json:"pub"`
		Disconnect *struct {
			Code   uint32 `json:"code"`
			Reason string `json:"reason"`
		} `json:"disconnect"`
	} `json:"push"`
}

// parseFrame splits a WebSocket message of the JSON protocol into its
// replies (one JSON object a line) and counts the server's pings (empty
// objects).
func parseFrame(msg []byte) (replies []cfReply, pings int, err error) {
	for line := range bytes.SplitSeq(msg, []byte("\n")) {
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
		case bytes.Equal(line, []byte("{}")):
			pings++
		default:
			var r cfReply
			if err := json.Unmarshal(line, &r); err != nil {
				return nil, 0, fmt.Errorf("centrifugo frame %.80q: %w", line, err)
			}
			replies = append(replies, r)
		}
	}
	return replies, pings, nil
}

// cfConn is one user's connection to Centrifugo.
type cfConn struct {
	ws   *websocket.Conn
	pong bool // the server wants its pings answered
	wmu  sync.Mutex
	done chan struct{}
}

var _ peerConn = (*cfConn)(nil)

// dialCentrifugo opens connection i (from one of the source addresses)
// as user, sends the connect command with the user's token and waits for
// the reply, which must subscribe it to the user's personal channel; then
// a goroutine reads it (see read) until it closes.
func dialCentrifugo(ctx context.Context, url string, i int, user, token string, onPub func(i int, data json.RawMessage, at time.Time)) (*cfConn, error) {
	ws, err := dialSession(ctx, url, i, nil, false)
	if err != nil {
		return nil, err
	}
	c := &cfConn{ws: ws, done: make(chan struct{})}
	if err := c.connect(user, token); err != nil {
		_ = ws.Close()
		return nil, err
	}
	go func() {
		defer close(c.done)
		c.read(func(data json.RawMessage, at time.Time) {
			if onPub != nil {
				onPub(i, data, at)
			}
		})
	}()
	return c, nil
}

func (c *cfConn) connect(user, token string) error {
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	cmd := fmt.Sprintf(`{"id":1,"connect":{"token":%q,"name":"kbench"}}`, token)
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
		return err
	}
	for range 10 { // a ping may come first
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("connect reply: %w", err)
		}
		replies, _, err := parseFrame(msg)
		if err != nil {
			return err
		}
		for _, r := range replies {
			switch {
			case r.ID != 1:
			case r.Error != nil:
				return fmt.Errorf("connect: %w", r.Error)
			case r.Connect == nil:
				return fmt.Errorf("connect: a reply without a result: %s", msg)
			default:
				if _, ok := r.Connect.Subs[personalChannel(user)]; !ok {
					return fmt.Errorf("connect: not subscribed to %s (subs %v)", personalChannel(user), r.Connect.Subs)
				}
				c.pong = r.Connect.Pong
				return nil
			}
		}
	}
	return errors.New("connect: no reply among the first 10 messages")
}

// read reads the connection until it closes, answering pings, and calls
// onPub with each publication's data and when its message arrived.
func (c *cfConn) read(onPub func(data json.RawMessage, at time.Time)) {
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		at := time.Now()
		replies, pings, err := parseFrame(msg)
		if err != nil {
			return
		}
		if pings > 0 && c.pong {
			c.wmu.Lock()
			err := c.ws.WriteMessage(websocket.TextMessage, []byte("{}"))
			c.wmu.Unlock()
			if err != nil {
				return
			}
		}
		for _, r := range replies {
			if r.Push == nil {
				continue
			}
			if r.Push.Disconnect != nil {
				return
			}
			if r.Push.Pub != nil {
				onPub(r.Push.Pub.Data, at)
			}
		}
	}
}

func (c *cfConn) Close() error { return c.ws.Close() }

func (c *cfConn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
